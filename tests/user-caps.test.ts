import { describe, expect, vi } from 'vitest';
import { openLegacySocket } from './support/legacy-socket.ts';
import { openTrpcSocket } from './support/raw-trpc.ts';
import { appTest, type TestApp } from './support/test-app.ts';

// What one user may hold at once on an instance, whatever rate they act at.
const CAPS = { WS_MAX_SOCKETS_PER_USER: '3', WS_MAX_SUBSCRIPTIONS_PER_USER: '8', INBOX_STREAMS_PER_USER: '5' };

const it = appTest(import.meta.filename, CAPS);

/** A raw tRPC socket whose first call has authenticated it, so it counts as its user's. */
async function userSocket(app: TestApp, user: string) {
  const socket = await openTrpcSocket(app.url, await app.token(user));
  await socket.call('query', 'rooms.list', { limit: 1 });
  return socket;
}

const subscribe = (socket: Awaited<ReturnType<typeof openTrpcSocket>>, path: string, input?: unknown) => {
  // A subscription that starts answers `started` and then data; one refused answers only an error.
  const id = `sub-${path}-${Math.random()}`;
  socket.ws.send(JSON.stringify({ id, method: 'subscription', params: { path, input } }));
  return vi.waitFor(
    () => {
      const answer = socket.received.find((m) => m.id === id && (m.error || m.result?.type === 'started'));
      if (!answer) throw new Error(`no answer to ${id}`);
      return answer.error?.data.parleyCode ?? 'started';
    },
    { timeout: 10_000, interval: 10 },
  );
};

describe('inbox streams', () => {
  it('share one set of listeners per user: five streams of a user with 40 rooms cost the listeners of one, and a sixth is refused with RATE_LIMITED', async ({ t: app }) => {
    const { services } = app.app;
    await app.sql(`insert into users (id) select 'pen-' || g from generate_series(1, 40) g union all select 'ivy'`);
    await app.sql(`insert into chat_rooms (id, participant1_id, participant2_id) select gen_random_uuid(), 'ivy', 'pen-' || g from generate_series(1, 40) g`);
    const base = services.bus.listenerCount();
    const socket = await userSocket(app, 'ivy');
    expect(await subscribe(socket, 'rooms.onEvent')).toBe('started');
    await vi.waitFor(() => expect(socket.received.filter((m) => (m.result as { data?: { type?: string } } | undefined)?.data?.type === 'ready')).toHaveLength(1), { timeout: 5_000 });
    const one = services.bus.listenerCount() - base;
    for (let i = 0; i < 4; i++) expect(await subscribe(socket, 'rooms.onEvent')).toBe('started');
    await vi.waitFor(() => expect(socket.received.filter((m) => (m.result as { data?: { type?: string } } | undefined)?.data?.type === 'ready')).toHaveLength(5), { timeout: 5_000 });
    expect(services.bus.listenerCount() - base).toBe(one);
    expect(await subscribe(socket, 'rooms.onEvent')).toBe('RATE_LIMITED');
    socket.ws.close();
    await socket.closed;
    await vi.waitFor(() => expect([services.bus.listenerCount(), services.inbox.hubCount()]).toEqual([base, 0]), { timeout: 5_000 });
  });

  it('a socket dropped while its streams are still starting leaves no listener behind', async ({ t: app }) => {
    const { services } = app.app;
    await app.sql(`insert into users (id) select 'pal-' || g from generate_series(1, 500) g union all select 'jon'`);
    await app.sql(`insert into chat_rooms (id, participant1_id, participant2_id) select gen_random_uuid(), 'jon', 'pal-' || g from generate_series(1, 500) g`);
    const base = services.bus.listenerCount();
    for (let round = 0; round < 5; round++) {
      const socket = await openTrpcSocket(app.url, await app.token('jon'));
      socket.ws.send(JSON.stringify(Array.from({ length: 5 }, (_, id) => ({ id, method: 'subscription', params: { path: 'rooms.onEvent' } }))));
      socket.ws.terminate();
    }
    // Long enough for any room list still being read to come back and be (not) subscribed.
    await new Promise((r) => setTimeout(r, 500));
    await vi.waitFor(() => expect([services.bus.listenerCount(), services.inbox.hubCount()]).toEqual([base, 0]), { timeout: 5_000 });
  });
});

describe('room streams', () => {
  it('a socket dropped while its room streams are still starting leaves no listener behind', async ({ t: app }) => {
    const { services } = app.app;
    const room = await (await app.client('ora')).rooms.open.mutate({ otherUserId: 'pia' });
    const base = services.bus.listenerCount();
    for (let round = 0; round < 20; round++) {
      const socket = await openTrpcSocket(app.url, await app.token('ora'));
      socket.ws.send(JSON.stringify(Array.from({ length: 8 }, (_, id) => ({ id, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId: room.id } } }))));
      // Dropped at a different point of the streams' start each round.
      await new Promise((r) => setTimeout(r, round % 5));
      socket.ws.terminate();
    }
    // Long enough for a stream still starting to finish and (wrongly) stay subscribed.
    await new Promise((r) => setTimeout(r, 500));
    await vi.waitFor(() => expect(services.bus.listenerCount()).toBe(base), { timeout: 5_000 });
  });
});

describe('per user, over all their sockets', () => {
  it('a user past WS_MAX_SOCKETS_PER_USER has the extra socket closed with 4029, on /trpc and ws/chat alike; other users are unaffected; closing one frees a place', async ({ t: app }) => {
    const held = [await userSocket(app, 'kim'), await userSocket(app, 'kim')];
    const legacy = await openLegacySocket(app.url, 'kim', 'lou', await app.token('kim'));
    const extra = await openTrpcSocket(app.url, await app.token('kim'));
    void extra.call('query', 'rooms.list', { limit: 1 }).catch(() => {});
    expect(await extra.closed).toBe(4029);
    const extraLegacy = await openLegacySocket(app.url, 'kim', 'lou', await app.token('kim'));
    expect((await extraLegacy.closed).code).toBe(4029);
    const other = await userSocket(app, 'lou');
    expect(other.ws.readyState).toBe(other.ws.OPEN);
    held[0]!.ws.close();
    await held[0]!.closed;
    const again = await userSocket(app, 'kim');
    expect(again.ws.readyState).toBe(again.ws.OPEN);
    for (const s of [held[1]!, again, other]) s.ws.close();
    legacy.close();
  });

  it('subscriptions are capped over all of a user’s sockets (WS_MAX_SUBSCRIPTIONS_PER_USER); a stopped one frees its place', async ({ t: app }) => {
    const room = await (await app.client('max')).rooms.open.mutate({ otherUserId: 'ned' });
    const a = await userSocket(app, 'max');
    const b = await userSocket(app, 'max');
    for (let i = 0; i < 4; i++) expect(await subscribe(a, 'messages.onEvent', { roomId: room.id })).toBe('started');
    for (let i = 0; i < 4; i++) expect(await subscribe(b, 'messages.onEvent', { roomId: room.id })).toBe('started');
    expect(await subscribe(b, 'messages.onEvent', { roomId: room.id })).toBe('RATE_LIMITED');
    expect(await subscribe(a, 'rooms.onEvent')).toBe('RATE_LIMITED');
    a.ws.close();
    await a.closed;
    await vi.waitFor(async () => expect(await subscribe(b, 'rooms.onEvent')).toBe('started'), { timeout: 5_000 });
    b.ws.close();
  });
});
