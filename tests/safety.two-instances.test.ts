import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { ChatClient, RoomEvent } from '../client-sdk/index.ts';
import { startPeerApp, type PeerApp } from './support/peer-app.ts';
import { hasRedisServer, startTestRedis, type TestRedis } from './support/redis-server.ts';
import { rejection } from './support/rejection.ts';
import { record } from './support/subscription.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

const SWEEP_MS = 300;

let redis: TestRedis | undefined;
beforeAll(async () => {
  if (hasRedisServer) redis = await startTestRedis();
  else console.warn('SKIPPED the Redis engine cases: no redis-server binary on PATH (CI has one)');
});
afterAll(() => redis?.stop());

/** Milliseconds until `call` is refused with BLOCKED (or allowed again, with `until: 'allowed'`). */
async function timeUntil(call: () => Promise<unknown>, until: 'blocked' | 'allowed', timeout: number) {
  const started = performance.now();
  await vi.waitFor(
    async () => {
      const outcome = await call().then(
        () => 'allowed',
        (err: { data?: { parleyCode?: string } }) => (err.data?.parleyCode === 'BLOCKED' ? 'blocked' : String(err)),
      );
      expect(outcome).toBe(until);
    },
    { timeout, interval: 20 },
  );
  return performance.now() - started;
}

describe.each([
  { engine: 'postgres', env: (): Record<string, string> => ({ FANOUT: 'postgres', FANOUT_SWEEP_MS: String(SWEEP_MS) }) },
  { engine: 'redis', env: (): Record<string, string> => ({ REDIS_URL: redis!.url, FANOUT_SWEEP_MS: String(SWEEP_MS) }) },
])('blocks across two instances on one database, $engine engine', ({ engine, env }) => {
  let one: TestApp;
  let two: PeerApp;
  let pairs = 0;
  beforeAll(async () => {
    if (engine === 'redis' && !redis) return;
    one = await startTestApp(`${import.meta.filename}-${engine}`, env());
    two = await startPeerApp(one, env());
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
  });

  /** A on instance one, B on instance two, a room of theirs with one message. */
  async function pair(): Promise<{ a: ChatClient; bThere: ChatClient; aThere: ChatClient; aId: string; bId: string; roomId: string; first: string }> {
    const n = ++pairs;
    const [aId, bId] = [`x${n}a-${engine}`, `x${n}b-${engine}`];
    const [a, aThere, bThere] = await Promise.all([one.client(aId), two.client(aId), two.client(bId)]);
    const room = await a.rooms.open.mutate({ otherUserId: bId });
    const first = await a.messages.send.mutate({ roomId: room.id, content: 'hello' });
    // Instance two knows the pair from before the block: its view is loaded.
    await bThere.messages.typing.mutate({ roomId: room.id });
    return { a, aThere, bThere, aId, bId, roomId: room.id, first: first.id };
  }

  it('a block made on one refuses sends on the other at once, typing there within the fan-out, and hides presence there', async ({ skip }) => {
    if (engine === 'redis' && !redis) skip();
    const { a, aThere, bThere, bId, roomId, first } = await pair();
    const subThere = record(aThere, roomId);
    await subThere.started;
    await a.users.block.mutate({ userId: bId });
    // The send statement reads the block itself: no propagation to wait for.
    expect(await rejection(bThere.messages.send.mutate({ roomId, content: 'over there' }))).toMatchObject({ parleyCode: 'BLOCKED' });
    const ms = await timeUntil(() => bThere.messages.typing.mutate({ roomId }), 'blocked', SWEEP_MS * 3);
    expect(ms).toBeLessThan(SWEEP_MS * 3);
    // B comes online on instance two; A's stream there does not show it.
    const bSub = record(bThere, roomId);
    await bSub.started;
    await two.app.services.presence.settled();
    await a.messages.delete.mutate({ roomId, messageId: first });
    await vi.waitFor(() => expect(subThere.events.some((e) => e.type === 'message_deleted')).toBe(true));
    expect(subThere.events.filter((e: RoomEvent) => 'user' in e && e.user === bId)).toEqual([]);
    bSub.unsubscribe();
    subThere.unsubscribe();
  });

  it('unblocking on the other instance restores sends and typing on both', async ({ skip }) => {
    if (engine === 'redis' && !redis) skip();
    const { a, aThere, bThere, bId, roomId } = await pair();
    await a.users.block.mutate({ userId: bId });
    await timeUntil(() => bThere.messages.typing.mutate({ roomId }), 'blocked', SWEEP_MS * 3);
    await aThere.users.unblock.mutate({ userId: bId });
    expect((await bThere.messages.send.mutate({ roomId, content: 'back' })).seq).toBe(2);
    await timeUntil(() => a.messages.typing.mutate({ roomId }), 'allowed', SWEEP_MS * 3);
  });

  it('a block no fan-out event announced (written straight to the database) holds on every instance within two sweeps', async ({ skip }) => {
    if (engine === 'redis' && !redis) skip();
    const { a, bThere, aId, bId, roomId } = await pair();
    await a.messages.typing.mutate({ roomId });
    await one.sql('with added as (insert into user_blocks (blocker_id, blocked_id) values ($1, $2)) update safety_epoch set n = n + 1', [aId, bId]);
    expect(await rejection(bThere.messages.send.mutate({ roomId, content: 'x' }))).toMatchObject({ parleyCode: 'BLOCKED' });
    const [onTwo, onOne] = await Promise.all([
      timeUntil(() => bThere.messages.typing.mutate({ roomId }), 'blocked', SWEEP_MS * 4),
      timeUntil(() => a.messages.typing.mutate({ roomId }), 'blocked', SWEEP_MS * 4),
    ]);
    expect(Math.max(onTwo, onOne)).toBeLessThanOrEqual(SWEEP_MS * 2 + 200);
  });
});
