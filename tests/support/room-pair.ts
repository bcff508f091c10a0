import type { ChatClient } from '../../client-sdk/index.ts';
import { range } from './subscription.ts';
import type { TestApp } from './test-app.ts';

/**
 * Opens rooms between fresh user pairs named `<prefix>a<n>` / `<prefix>b<n>`, one pair per call.
 * `b` accepts the room, so the two see each other's presence, typing and receipts;
 * `{ request: true }` leaves it a message request.
 */
export function roomPairs(app: TestApp, prefix: string, { request = false } = {}) {
  let pairs = 0;
  return async () => {
    const n = ++pairs;
    const [aId, bId] = [`${prefix}a${n}`, `${prefix}b${n}`];
    const [a, b] = await Promise.all([app.client(aId), app.client(bId)]);
    const room = await a.rooms.open.mutate({ otherUserId: bId });
    if (!request) await b.rooms.accept.mutate({ roomId: room.id });
    return { a, b, room, aId, bId };
  };
}

/** Sends `m<from>` … `m<to>` one after another; the stored messages, in order. */
export async function sendMany(client: ChatClient, roomId: string, from: number, to: number) {
  const sent = [];
  for (const n of range(from, to)) sent.push(await client.messages.send.mutate({ roomId, content: `m${n}` }));
  return sent;
}
