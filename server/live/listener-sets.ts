/** Listeners per key, in this process. */
export interface ListenerSets<K, E> {
  publish(key: K, event: E): void;
  /** Returns the unsubscribe function. */
  subscribe(key: K, listener: (event: E) => void): () => void;
  /** Number of live listeners, for readiness and metrics. */
  count(): number;
}

export function createListenerSets<K, E>(onListenerError: (err: unknown) => void): ListenerSets<K, E> {
  const sets = new Map<K, Set<(event: E) => void>>();
  let count = 0;
  return {
    publish(key, event) {
      const listeners = sets.get(key);
      if (!listeners) return;
      for (const listener of listeners) {
        // One broken listener must not starve the others of the event.
        try {
          listener(event);
        } catch (err) {
          onListenerError(err);
        }
      }
    },
    subscribe(key, listener) {
      let listeners = sets.get(key);
      if (!listeners) sets.set(key, (listeners = new Set()));
      listeners.add(listener);
      count++;
      return () => {
        if (!listeners.delete(listener)) return;
        count--;
        if (listeners.size === 0) sets.delete(key);
      };
    },
    count: () => count,
  };
}
