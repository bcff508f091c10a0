import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { describe, expect, vi } from 'vitest';
import type { RoomEvent } from '../../client-sdk/index.ts';
import { STORE_ONE_MESSAGE_SQL } from '../../server/messages/message-store.ts';
import { roomPairs, sendMany } from '../support/room-pair.ts';
import { range, record } from '../support/subscription.ts';
import { appTest, type TestApp } from '../support/test-app.ts';

// Sends once ran at 0.5× while read markers moved, because each change took its number under
// the room row's lock, the lock every send batch of the room takes for its seqs. Changes now
// number in a row of their own; these tests hold a send open on the room row and require changes
// to go through meanwhile, numbered densely and placed after the last committed message.

const it = appTest(import.meta.filename).extend<{ $file: { freshRoom: ReturnType<typeof roomPairs> } }>({
  freshRoom: [async ({ t }, use) => use(roomPairs(t, 'c')), { scope: 'file' }],
});

/** A send that has taken its seq (and so the room row's lock) and not committed yet: the send's own statement in an open transaction. */
async function sendInFlight(t: TestApp, roomId: string, sender: string) {
  const c = new pg.Client({ connectionString: t.databaseUrl });
  await c.connect();
  await c.query('begin');
  const { rows } = await c.query<{ seq: string }>(STORE_ONE_MESSAGE_SQL, [roomId, randomUUID(), sender, 'in flight']);
  let ended = false;
  const end = async (how: 'commit' | 'rollback') => {
    if (ended) return;
    ended = true;
    await c.query(how);
    await c.end();
  };
  return { seq: Number(rows[0]!.seq), commit: () => end('commit'), [Symbol.asyncDispose]: () => end('rollback') };
}

/** Fails when `work` is still waiting after `ms`: here, waiting means it queued behind the open send's row lock. */
async function withoutWaiting<T>(what: string, work: Promise<T>, ms = 5_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} waited for the send holding the room row`)), ms)));
  try {
    return await Promise.race([work, stuck]);
  } finally {
    clearTimeout(timer);
  }
}

const stored = (events: RoomEvent[]) => events.filter((e) => e.type !== 'presence');
const summary = (e: RoomEvent) =>
  e.type === 'message' ? `m${e.message.seq}` : e.type === 'read' ? `read${e.seq}` : 'message' in e ? `${e.type}:${e.message.seq}` : e.type;

async function changeLog(t: TestApp, roomId: string) {
  return t.sql<{ change_seq: number; at_seq: number; event: RoomEvent & { change_seq: number } }>(
    'select change_seq::int, at_seq::int, event from room_changes where chat_room_id = $1 order by change_seq',
    [roomId],
  );
}

describe('changes beside a send in flight', () => {
  it('markRead, edit and delete go through while a send holds the room row; each is placed after the last committed message, and a resume gets everything once', async ({ t, freshRoom }) => {
    const { a, b, room, aId } = await freshRoom();
    const [m1, m2] = await sendMany(a, room.id, 1, 3);
    await using send = await sendInFlight(t, room.id, aId);
    expect(send.seq).toBe(4);

    expect(await withoutWaiting('markRead', b.messages.markRead.mutate({ roomId: room.id, seq: 3 }))).toEqual({ seq: 3 });
    await withoutWaiting('edit', a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'edited' }));
    await withoutWaiting('delete', a.messages.delete.mutate({ roomId: room.id, messageId: m2!.id }));
    // The send is not committed: every change sits after message 3, the last one committed.
    expect((await changeLog(t, room.id)).map((c) => [c.change_seq, c.at_seq])).toEqual([[1, 3], [2, 3], [3, 3]]);

    await send.commit();
    const page = await b.messages.list.query({ roomId: room.id, direction: 'backward', limit: 50 });
    expect(page.lastEventId).toBe('4.3');
    const resumed = record(b, room.id, '3');
    await vi.waitFor(() => expect(stored(resumed.events)).toHaveLength(4));
    expect(stored(resumed.events).map(summary)).toEqual(['read3', 'message_updated:1', 'message_deleted:2', 'm4']);
    expect(resumed.lastId).toBe('4.3');
    resumed.unsubscribe();
  });

  it('concurrent changes while sends wait on the room row: dense change seqs, at_seq never backwards and covering what each change refers to; live and resumed subscribers get each event once', async ({ t, freshRoom }) => {
    const { a, b, room, aId, bId } = await freshRoom();
    const sent = await sendMany(a, room.id, 1, 6);
    const live = record(b, room.id, '0');
    await live.waitForMessages(6);
    const pending: Promise<unknown>[] = [];
    {
      await using send = await sendInFlight(t, room.id, aId);
      // These sends queue behind the open one for the room row; the changes must not. (From a client
      // of their own: the SDK batches one client's concurrent HTTP calls into one response.)
      const a2 = await t.client(aId);
      for (const n of range(8, 10)) pending.push(a2.messages.send.mutate({ roomId: room.id, content: `m${n}` }));
      const changes = [
        ...range(1, 6).map((seq) => b.messages.markRead.mutate({ roomId: room.id, seq })),
        ...range(1, 6).map((seq) => a.messages.markRead.mutate({ roomId: room.id, seq: 7 - seq })),
        ...sent.slice(0, 3).map((m) => a.messages.edit.mutate({ roomId: room.id, messageId: m.id, content: `${m.content} edited` })),
      ];
      await withoutWaiting('the changes', Promise.all(changes));
      await send.commit();
    }
    await Promise.all(pending);

    const log = await changeLog(t, room.id);
    const [room10] = await t.sql<{ last_seq: number }>('select last_seq::int from chat_rooms where id = $1', [room.id]);
    const lastSeq = room10!.last_seq;
    expect(lastSeq).toBe(10);
    expect(log.map((c) => c.change_seq)).toEqual(range(1, log.length));
    expect(log.filter((c) => c.event.type === 'message_updated')).toHaveLength(3);
    for (const [i, c] of log.entries()) {
      expect(c.event.change_seq).toBe(c.change_seq);
      expect(c.at_seq).toBeGreaterThanOrEqual(i ? log[i - 1]!.at_seq : 0);
      expect(c.at_seq).toBeLessThanOrEqual(lastSeq);
      const refersTo = c.event.type === 'read' ? c.event.seq : 'message' in c.event ? c.event.message.seq : 0;
      expect(c.at_seq).toBeGreaterThanOrEqual(refersTo);
    }
    // Markers only moved forward: each user's read events climb.
    for (const user of [aId, bId]) {
      const seqs = log.flatMap((c) => (c.event.type === 'read' && c.event.user === user ? [c.event.seq] : []));
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }

    const key = (e: RoomEvent) => (e.type === 'message' ? `m${e.message.seq}` : 'change_seq' in e ? `c${e.change_seq}` : e.type);
    const expected = [...range(1, 10).map((s) => `m${s}`), ...log.map((c) => `c${c.change_seq}`)].sort();
    const ids = (events: RoomEvent[]) => stored(events).map(key).sort();
    await vi.waitFor(() => expect(ids(live.events)).toEqual(expected));
    const resumed = record(b, room.id, '0');
    await vi.waitFor(() => expect(ids(resumed.events)).toEqual(expected));
    // Replay puts each change after message at_seq, so after every message it refers to.
    const order = stored(resumed.events).map(key);
    for (const c of log) {
      const at = order.indexOf(`c${c.change_seq}`);
      expect(order.indexOf(`m${c.at_seq}`)).toBeLessThan(at);
      if (c.at_seq < lastSeq) expect(order.indexOf(`m${c.at_seq + 1}`)).toBeGreaterThan(at);
    }
    expect(live.lastId).toBe(`10.${log.length}`);
    expect(resumed.lastId).toBe(`10.${log.length}`);
    live.unsubscribe();
    resumed.unsubscribe();
  });
});
