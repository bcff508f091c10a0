import { describe, expect, vi } from 'vitest';
import type { LegacyServerFrame } from '../contracts/index.ts';
import { engineTests } from './support/engine-cases.ts';
import { openLegacySocket, type LegacySocket } from './support/legacy-socket.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { range, record } from './support/subscription.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

const engines = engineTests().map(({ engine, skip, it }) => ({
  engine,
  skip,
  it: it.extend<{ $file: { a: TestApp; b: PeerApp } }>({
    a: [
      async ({ engineEnv }, use) => {
        await using a = await startTestApp(`${import.meta.filename}-${engine}`, engineEnv);
        await use(a);
      },
      { scope: 'file' },
    ],
    b: [
      async ({ a, engineEnv }, use) => {
        await using b = await startPeerApp(a, engineEnv);
        await use(b);
      },
      { scope: 'file' },
    ],
  }),
}));

const legacyMessages = (s: LegacySocket) => s.frames.flatMap((f) => (f.action === 'new_message' ? [f.message] : []));
const typings = (frames: { action?: string; type?: string }[]) => frames.filter((f) => f.action === 'typing' || f.type === 'typing').length;

describe.each(engines)('two instances on one database, $engine engine', ({ engine, skip, it }) => {
  it.skipIf(skip)(
    '500 concurrent sends over both instances and all three surfaces: every subscriber on both sees each exactly once, tRPC in seq order; typing crosses once',
    async ({ a, b }) => {
      expect(a.app.services.fanout.name).toBe(engine);
      const aliceA = await a.client('alice');
      const bobB = await b.client('bob');
      const room = await aliceA.rooms.open.mutate({ otherUserId: 'bob' });
      const subA = record(aliceA, room.id);
      const subB = record(bobB, room.id);
      await Promise.all([subA.started, subB.started]);
      const legA = await openLegacySocket(a.url, 'alice', 'bob', await a.token('alice'));
      const legB = await openLegacySocket(b.url, 'bob', 'alice', await a.token('bob'));
      const rest = async (url: string, user: string, content: string) => {
        const res = await fetch(`${url}/${room.id}/messages/`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await a.token(user)}`, 'content-type': 'application/json' },
          body: JSON.stringify({ content, chat_room: room.id, sender: user }),
        });
        expect(res.status).toBe(201);
      };
      const frame = (user: string, other: string, message: string) => ({ action: 'new_message', message, sender: user, chat_room: room.id, other_user: other });
      // A ws/chat socket takes WS_MAX_INFLIGHT frames at a time: each socket sends its share one
      // after another, each once the server's echo of the previous one came back.
      const inTurn = (leg: LegacySocket, user: string, other: string) => {
        let turn = Promise.resolve();
        return (c: string) =>
          (turn = turn.then(async () => {
            leg.send(frame(user, other, c));
            await vi.waitFor(() => expect(legacyMessages(leg).some((m) => m.content === c)).toBe(true), { timeout: 20_000, interval: 2 });
          }));
      };
      const surfaces = [
        (c: string) => aliceA.messages.send.mutate({ roomId: room.id, content: c }),
        (c: string) => bobB.messages.send.mutate({ roomId: room.id, content: c }),
        inTurn(legA, 'alice', 'bob'),
        inTurn(legB, 'bob', 'alice'),
        (c: string) => rest(a.url, 'alice', c),
        (c: string) => rest(b.url, 'bob', c),
      ];
      const contents = range(1, 500).map((i) => `m${i}`);
      await Promise.all(contents.map((c, i) => surfaces[i % surfaces.length]!(c)));

      await Promise.all([subA.waitForMessages(500), subB.waitForMessages(500)]);
      for (const leg of [legA, legB]) await vi.waitFor(() => expect(legacyMessages(leg).length).toBeGreaterThanOrEqual(500), { timeout: 20_000, interval: 20 });
      for (const sub of [subA, subB]) {
        expect(sub.seqs()).toEqual(range(1, 500));
        expect(new Set(sub.events.flatMap((e) => (e.type === 'message' ? [e.message.content] : [])))).toEqual(new Set(contents));
      }
      for (const leg of [legA, legB]) {
        const got = legacyMessages(leg);
        expect(got).toHaveLength(500);
        expect(new Set(got.map((m) => m.id)).size).toBe(500);
        expect(new Set(got.map((m) => m.content))).toEqual(new Set(contents));
      }
      expect(await a.sql('select seq::int as seq from messages where chat_room_id = $1 order by seq', [room.id])).toEqual(range(1, 500).map((seq) => ({ seq })));

      // Sent through B only, they reach A's subscribers within a second.
      const sentAt = Date.now();
      await Promise.all(range(1, 20).map((i) => bobB.messages.send.mutate({ roomId: room.id, content: `b-only ${i}` })));
      await Promise.all([
        subA.waitForMessages(520, 1_000),
        vi.waitFor(() => expect(legacyMessages(legA).length).toBe(520), { timeout: 1_000, interval: 5 }),
      ]);
      expect(Date.now() - sentAt).toBeLessThan(2_000);
      expect(subA.seqs()).toEqual(range(1, 520));

      // Typing from A reaches B once; A's own subscribers are not handed A's echo a second time.
      await aliceA.messages.typing.mutate({ roomId: room.id });
      await vi.waitFor(() => expect(typings(subB.events)).toBe(1), { timeout: 5_000, interval: 5 });
      // B's message follows A's typing through the engine, so A has seen any echo by the time it arrives.
      await bobB.messages.send.mutate({ roomId: room.id, content: 'after typing' });
      await subA.waitForMessages(521, 5_000);
      await vi.waitFor(() => expect(legacyMessages(legA).length).toBe(521), { timeout: 5_000, interval: 5 });
      expect([typings(subA.events), typings(subB.events), typings(legA.frames as LegacyServerFrame[]), typings(legB.frames)]).toEqual([1, 1, 1, 1]);
      legA.close();
      legB.close();
    },
  );

  it.skipIf(skip)('a subscriber that moves to the other instance mid-stream resumes exactly', async ({ a, b }) => {
    const aliceA = await a.client('alice');
    const aliceB = await b.client('alice');
    const bobA = await a.client('bob');
    const room = await aliceA.rooms.open.mutate({ otherUserId: 'carol' });
    const first = record(aliceA, room.id);
    await first.started;
    const sending = (async () => {
      for (let i = 1; i <= 120; i++) {
        const sender = i % 2 ? aliceA : aliceB;
        await sender.messages.send.mutate({ roomId: room.id, content: `r${i}` });
      }
    })();
    await first.waitForMessages(40);
    first.unsubscribe();
    const movedAt = first.seqs().at(-1)!;
    expect(first.lastId).toBe(String(movedAt));
    const second = record(aliceB, room.id, first.lastId);
    await sending;
    await second.waitForMessages(120 - movedAt);
    expect([...first.seqs(), ...second.seqs()]).toEqual(range(1, 120));
    void bobA;
  });
});
