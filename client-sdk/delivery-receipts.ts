import type { TRPCLink } from '@trpc/client';
import type { AnyRouter } from '@trpc/server';
import { observable } from '@trpc/server/observable';

/** The streams whose `message` events count as received by this client. */
const STREAMS = new Set(['messages.onEvent', 'rooms.onEvent']);

/**
 * A link that reports every `message` a room or inbox stream brings, so the client can mark it
 * delivered. It sits before the transport links and only looks: every result passes on unchanged.
 */
export function receivedMessagesLink<R extends AnyRouter>(onMessage: (message: { roomId: string; seq: number; sender: string }) => void): TRPCLink<R> {
  return () =>
    ({ op, next }) =>
      observable((observer) => {
        const watch = op.type === 'subscription' && STREAMS.has(op.path);
        return next(op).subscribe({
          next(value) {
            if (watch) {
              const message = messageOf(value.result);
              if (message) onMessage(message);
            }
            observer.next(value);
          },
          error: (err) => observer.error(err),
          complete: () => observer.complete(),
        });
      });
}

/** A stream's data is the event itself, or `{ id, data }` for a tracked (resumable) one. */
function messageOf(result: unknown): { roomId: string; seq: number; sender: string } | undefined {
  if (!result || typeof result !== 'object' || (result as { type?: unknown }).type !== 'data') return undefined;
  let event = (result as { data?: unknown }).data as { type?: unknown; data?: unknown; message?: { chat_room: string; seq: number; sender: string } } | undefined;
  if (event && event.type === undefined && event.data && typeof event.data === 'object') event = event.data as typeof event;
  const m = event?.type === 'message' ? event.message : undefined;
  return m && { roomId: m.chat_room, seq: m.seq, sender: m.sender };
}

/** The `sub` of a JWT, read without verifying it (the server did): whose own messages not to mark. */
export function subjectOf(token: string): string | undefined {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(payload.length / 4) * 4, '='));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === 'string' ? sub : undefined;
  } catch {
    return undefined;
  }
}
