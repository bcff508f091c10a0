import { vi } from 'vitest';
import type { ChatClient, RoomEvent } from '../../client-sdk/index.ts';

export interface Recorded {
  events: RoomEvent[];
  /** seqs of message events, in arrival order. */
  seqs(): number[];
  lastId: string | undefined;
  errors: unknown[];
  started: Promise<void>;
  unsubscribe(): void;
  /** Resolves once at least `n` message events arrived. */
  waitForMessages(n: number, timeout?: number): Promise<void>;
}

/** Subscribes to a room's events through the SDK and records everything it receives. */
export function record(client: ChatClient, roomId: string, lastEventId?: string): Recorded {
  let markStarted!: () => void;
  const rec: Recorded = {
    events: [],
    seqs: () => rec.events.flatMap((e) => (e.type === 'message' ? [e.message.seq] : [])),
    lastId: lastEventId,
    errors: [],
    started: new Promise<void>((resolve) => (markStarted = resolve)),
    unsubscribe: () => sub.unsubscribe(),
    waitForMessages: (n, timeout = 20_000) =>
      vi.waitFor(
        () => {
          if (rec.errors.length) throw new Error(`subscription failed: ${String(rec.errors[0])}`);
          if (rec.seqs().length < n) throw new Error(`${rec.seqs().length}/${n} messages received`);
        },
        { timeout, interval: 10 },
      ),
  };
  const sub = client.messages.onEvent.subscribe(
    { roomId, ...(lastEventId !== undefined ? { lastEventId } : {}) },
    {
      onStarted: () => markStarted(),
      onData: ({ id, data }) => {
        rec.lastId = id;
        rec.events.push(data);
      },
      onError: (err) => rec.errors.push(err),
    },
  );
  return rec;
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
