type AbortListener = ((this: AbortSignal, event: Event) => unknown) | { handleEvent(event: Event): unknown };

/**
 * A WebSocket call's stop, handed to its procedure as its AbortSignal. An AbortController's signal
 * is an EventTarget holding two Maps (about 0.9 KiB with its listeners), and an idle subscription
 * keeps its signal for its whole life. The procedures served here only read `aborted` and add or
 * remove 'abort' listeners, which this does with an array. Like an AbortSignal's, a listener added
 * once aborted is never called, and one that throws does not keep the others from being called.
 */
export class StopSignal {
  aborted = false;
  reason: unknown = undefined;
  onabort: ((this: AbortSignal, event: Event) => unknown) | null = null;
  #listeners: AbortListener[] | undefined;

  /** What a procedure is handed: callers only use what is implemented here. */
  get signal(): AbortSignal {
    return this as unknown as AbortSignal;
  }

  addEventListener(type: string, listener: AbortListener | null) {
    if (type !== 'abort' || !listener || this.aborted) return;
    const listeners = this.#listeners;
    // Copied to their exact length: a pushed-to array keeps room for 17, and an idle subscription keeps its listeners.
    if (!listeners) this.#listeners = [listener];
    else if (!listeners.includes(listener)) this.#listeners = listeners.concat([listener]);
  }

  removeEventListener(type: string, listener: AbortListener | null) {
    const listeners = this.#listeners;
    const i = type === 'abort' && listener && listeners ? listeners.indexOf(listener) : -1;
    if (i >= 0) listeners!.splice(i, 1);
  }

  throwIfAborted() {
    if (this.aborted) throw this.reason;
  }

  abort() {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = new DOMException('This operation was aborted', 'AbortError');
    const listeners = this.#listeners ?? [];
    this.#listeners = undefined;
    const event = new Event('abort');
    const handlers = this.onabort ? [this.onabort, ...listeners] : listeners;
    for (const listener of handlers) {
      try {
        if (typeof listener === 'function') listener.call(this.signal, event);
        else listener.handleEvent(event);
      } catch (err) {
        // As an EventTarget reports a listener's failure: uncaught, after the others ran.
        process.nextTick(() => {
          throw err;
        });
      }
    }
  }
}
