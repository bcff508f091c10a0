import type { Message } from '../contracts/index.ts';
import { isRetryable } from './errors.ts';

/** A message the app asked to send, until the server stored it or refused it. */
export interface PendingMessage {
  /** The idempotency key it is sent (and every retry re-sent) with: it is stored once. */
  clientId: string;
  roomId: string;
  content: string;
  /** `sending`: a call is out; `queued`: waiting, or offline or refused for now (see `error`) and retried. */
  status: 'sending' | 'queued';
  /** Why the last attempt did not get through. */
  error?: unknown;
}

/** Sends that survive being offline: queued, retried in order with their clientId, each stored once. */
export interface Outbox {
  /**
   * Sends `content`; resolves with the stored message once the server has it (after any number of
   * retries), rejects if the server refuses it for good (e.g. INVALID_INPUT, ROOM_NOT_FOUND).
   */
  send(roomId: string, content: string, clientId?: string): Promise<Message>;
  /** Messages not yet stored, oldest first: show them as pending. A message refused for good leaves this list and its `send` rejects. */
  pending(): readonly PendingMessage[];
  /** Hears every change of {@link pending}; returns the unsubscribe function. */
  subscribe(listener: (pending: readonly PendingMessage[]) => void): () => void;
  /** Retries queued messages now (the SDK also does when its WebSocket opens, and on a backoff timer). */
  flush(): void;
  /** Stops retrying. */
  close(): void;
}

export interface OutboxOptions {
  send(input: { roomId: string; content: string; clientId: string }): Promise<Message>;
  /** Delay before retry `n` (0-based), in ms. Default: 500 ms doubling up to 10 s. */
  retryDelayMs?: (attempt: number) => number;
}

interface Entry extends PendingMessage {
  resolve(message: Message): void;
  reject(err: unknown): void;
}

export function createOutbox({ send, retryDelayMs = (n) => Math.min(500 * 2 ** n, 10_000) }: OutboxOptions): Outbox {
  let entries: Entry[] = [];
  const listeners = new Set<(pending: readonly PendingMessage[]) => void>();
  let running = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const view = (): PendingMessage[] => entries.map(({ clientId, roomId, content, status, error }) => ({ clientId, roomId, content, status, ...(error !== undefined ? { error } : {}) }));
  const emit = () => {
    const snapshot = view();
    for (const listener of listeners) listener(snapshot);
  };

  // One send at a time, oldest first: messages reach the room in the order the app sent them.
  async function run() {
    if (running || closed) return;
    running = true;
    clearTimeout(timer);
    try {
      for (let entry = next(); entry; entry = next()) {
        entry.status = 'sending';
        emit();
        try {
          const message = await send({ roomId: entry.roomId, content: entry.content, clientId: entry.clientId });
          attempt = 0;
          entries = entries.filter((e) => e !== entry);
          emit();
          entry.resolve(message);
        } catch (err) {
          if (isRetryable(err)) {
            entry.status = 'queued';
            entry.error = err;
            emit();
            if (!closed) timer = setTimeout(run, retryDelayMs(attempt++));
            return;
          }
          entries = entries.filter((e) => e !== entry);
          emit();
          entry.reject(err);
        }
      }
    } finally {
      running = false;
    }
  }
  const next = () => entries[0];

  return {
    send(roomId, content, clientId = crypto.randomUUID()) {
      return new Promise<Message>((resolve, reject) => {
        entries.push({ clientId, roomId, content, status: 'queued', resolve, reject });
        emit();
        void run();
      });
    },
    pending: view,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    flush() {
      attempt = 0;
      void run();
    },
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
