import { describe, expect, vi } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { startPeerApp } from './support/peer-app.ts';
import { record } from './support/subscription.ts';
import { appTest } from './support/test-app.ts';

const SWEEP_MS = 300;
const ENV = { FANOUT: 'postgres', FANOUT_SWEEP_MS: String(SWEEP_MS) };
const it = appTest(import.meta.filename, ENV);

/** Sends typing until one reaches `seen` (typing is throttled per user and room). */
async function typingReaches(send: () => Promise<unknown> | void, seen: () => boolean) {
  await vi.waitFor(
    async () => {
      await send();
      expect(seen()).toBe(true);
    },
    { timeout: 10_000, interval: 300 },
  );
}

describe('message requests and privacy across two instances', () => {
  it('an answer or a privacy change made on one instance applies to the streams of the other, tRPC and ws/chat', async ({ t }) => {
    await using two = await startPeerApp(t, ENV);
    const [aId, bId] = ['two-a', 'two-b'];
    const a = await t.client(aId);
    const b = await two.client(bId);
    const room = await a.rooms.open.mutate({ otherUserId: bId });
    const subA = record(a, room.id);
    const legacyA = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    await subA.started;
    // Unanswered: b's typing on instance two reaches neither of a's streams on instance one.
    await b.messages.typing.mutate({ roomId: room.id });
    await a.messages.send.mutate({ roomId: room.id, content: 'barrier' });
    await subA.waitForMessages(1);
    await legacyA.waitFor((f) => f.action === 'new_message');
    expect(subA.events.filter((e) => e.type === 'typing')).toEqual([]);
    expect(legacyA.frames.filter((f) => f.action === 'typing')).toEqual([]);

    // b comes online on instance two, unseen by a: a's stream on one hears it once b accepts.
    const subB = record(b, room.id);
    await subB.started;
    await two.app.services.presence.settled();
    await b.rooms.accept.mutate({ roomId: room.id });
    await vi.waitFor(() => expect(subA.events.filter((e) => e.type === 'presence')).toEqual([{ type: 'presence', user: bId, online: true, last_seen_at: null }]), { timeout: 5_000 });
    await typingReaches(
      () => b.messages.typing.mutate({ roomId: room.id }),
      () => subA.events.some((e) => e.type === 'typing') && legacyA.frames.some((f) => f.action === 'typing'),
    );

    // b stops sending read receipts on instance two: a's stream on one no longer shows them.
    await b.users.updatePrivacy.mutate({ sendReadReceipts: false });
    // Instance one applies the change once its view has re-read (the bus event, or the sweep): a
    // marker made before that may still show, so the test waits for it rather than for a list.
    await vi.waitFor(async () => expect((await t.app.services.blocks.view.visibility(aId)).receiptsOf(bId)).toBe(false), { timeout: 5_000 });
    await vi.waitFor(async () => expect((await a.rooms.list.query()).items[0]!.other_read_seq).toBe(0));
    await b.messages.markRead.mutate({ roomId: room.id, seq: 1 });
    await a.messages.send.mutate({ roomId: room.id, content: 'barrier 2' });
    await subA.waitForMessages(2);
    expect(subA.events.filter((e) => e.type === 'read')).toEqual([]);
    subA.unsubscribe();
    subB.unsubscribe();
    legacyA.close();
  });

  it('an answer no event announced (written to the database) is applied within a sweep', async ({ t }) => {
    await using two = await startPeerApp(t, ENV);
    const [aId, bId] = ['sw-a', 'sw-b'];
    const a = await t.client(aId);
    const b = await two.client(bId);
    const room = await a.rooms.open.mutate({ otherUserId: bId });
    const subA = record(a, room.id);
    await subA.started;
    await t.sql('update chat_rooms set accepted_at = now() where id = $1', [room.id]);
    await t.sql('update safety_epoch set n = n + 1 where id = 1');
    await typingReaches(
      () => b.messages.typing.mutate({ roomId: room.id }),
      () => subA.events.some((e) => e.type === 'typing'),
    );
    subA.unsubscribe();
  });
});
