import { describe, expect, vi } from 'vitest';
import { createChatClient, type InboxEvent, type RoomEvent } from '../client-sdk/index.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { rejection } from './support/rejection.ts';
import { sendMany } from './support/room-pair.ts';
import { record } from './support/subscription.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename);

const stored = (events: RoomEvent[]) => events.filter((e) => e.type !== 'presence' && e.type !== 'typing');

describe('delivered markers', () => {
  it('move forward only, are stored, reach room and inbox streams as `delivered`, and refuse a seq past the last', async ({ t }) => {
    const a = createChatClient({ url: t.url, token: await t.token('dm-a1'), deliveryReceipts: false });
    const b = createChatClient({ url: t.url, token: await t.token('dm-b1'), deliveryReceipts: false });
    const room = await a.rooms.open.mutate({ otherUserId: 'dm-b1' });
    // Receipts are seen once the recipient has answered the request.
    await b.rooms.accept.mutate({ roomId: room.id });
    await sendMany(a, room.id, 1, 3);
    const subA = record(a, room.id, '3');
    const inbox: InboxEvent[] = [];
    const inboxSub = a.rooms.onEvent.subscribe(undefined, { onData: (e) => inbox.push(e) });
    await subA.started;
    await vi.waitFor(() => expect(inbox.map((e) => e.type)).toContain('ready'));
    expect(await b.messages.markDelivered.mutate({ roomId: room.id, seq: 2 })).toEqual({ seq: 2 });
    expect(await b.messages.markDelivered.mutate({ roomId: room.id, seq: 1 })).toEqual({ seq: 2 });
    expect(await b.messages.markDelivered.mutate({ roomId: room.id, seq: 2 })).toEqual({ seq: 2 });
    expect(await rejection(b.messages.markDelivered.mutate({ roomId: room.id, seq: 4 }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    const delivered = { type: 'delivered', chat_room: room.id, user: 'dm-b1', seq: 2, change_seq: 1 };
    await vi.waitFor(() => expect(stored(subA.events)).toEqual([delivered]));
    await vi.waitFor(() => expect(inbox.filter((e) => e.type === 'delivered')).toEqual([delivered]));
    expect(subA.lastId).toBe('3.1');
    expect(await t.sql('select seq::int from delivered_markers where chat_room_id = $1 and user_id = $2', [room.id, 'dm-b1'])).toEqual([{ seq: 2 }]);
    // The read marker is its own: delivery moved nothing there.
    expect(await t.sql('select seq::int from read_markers where chat_room_id = $1', [room.id])).toEqual([]);
    const outsider = await t.client('dm-outsider');
    expect(await rejection(outsider.messages.markDelivered.mutate({ roomId: room.id, seq: 1 }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
    subA.unsubscribe();
    inboxSub.unsubscribe();
    await Promise.all([a.close(), b.close()]);
  });

  it('are replayed on resume like read markers, in commit order, once', async ({ t }) => {
    const a = createChatClient({ url: t.url, token: await t.token('dm-a2'), deliveryReceipts: false });
    const b = createChatClient({ url: t.url, token: await t.token('dm-b2'), deliveryReceipts: false });
    const room = await a.rooms.open.mutate({ otherUserId: 'dm-b2' });
    await b.rooms.accept.mutate({ roomId: room.id });
    await sendMany(a, room.id, 1, 2);
    await b.messages.markDelivered.mutate({ roomId: room.id, seq: 2 });
    await sendMany(a, room.id, 3, 3);
    await b.messages.markDelivered.mutate({ roomId: room.id, seq: 3 });
    await b.messages.markRead.mutate({ roomId: room.id, seq: 3 });
    const resumed = record(a, room.id, '1');
    await vi.waitFor(() => expect(stored(resumed.events)).toHaveLength(5));
    await new Promise((r) => setTimeout(r, 200));
    const summary = (e: RoomEvent) => (e.type === 'message' ? `m${e.message.seq}` : 'seq' in e ? `${e.type}${e.seq}` : e.type);
    expect(stored(resumed.events).map(summary)).toEqual(['m2', 'delivered2', 'm3', 'delivered3', 'read3']);
    expect(resumed.lastId).toBe('3.3');
    // Resuming past the first delivery replays only what follows it.
    const later = record(a, room.id, '2.1');
    await vi.waitFor(() => expect(stored(later.events)).toHaveLength(3));
    await new Promise((r) => setTimeout(r, 200));
    expect(stored(later.events).map(summary)).toEqual(['m3', 'delivered3', 'read3']);
    for (const s of [resumed, later]) s.unsubscribe();
    await Promise.all([a.close(), b.close()]);
  });

  it('rooms.list carries the other participant’s delivered and read markers', async ({ t }) => {
    const a = createChatClient({ url: t.url, token: await t.token('dm-a3'), deliveryReceipts: false });
    const b = createChatClient({ url: t.url, token: await t.token('dm-b3'), deliveryReceipts: false });
    const room = await a.rooms.open.mutate({ otherUserId: 'dm-b3' });
    await b.rooms.accept.mutate({ roomId: room.id });
    const fresh = (await a.rooms.list.query()).items.find((r) => r.id === room.id)!;
    expect(fresh).toMatchObject({ other_delivered_seq: 0, other_read_seq: 0 });
    await sendMany(a, room.id, 1, 4);
    await b.messages.markDelivered.mutate({ roomId: room.id, seq: 4 });
    await b.messages.markRead.mutate({ roomId: room.id, seq: 2 });
    const mine = (await a.rooms.list.query()).items.find((r) => r.id === room.id)!;
    expect(mine).toMatchObject({ other_delivered_seq: 4, other_read_seq: 2, read_seq: 0 });
    const theirs = (await b.rooms.list.query()).items.find((r) => r.id === room.id)!;
    expect(theirs).toMatchObject({ other_delivered_seq: 0, other_read_seq: 0, read_seq: 2, unread: 2 });
    await Promise.all([a.close(), b.close()]);
  });
});

describe('the SDK marks delivered', () => {
  it('the messages a room stream brings, paced per room, never the caller’s own', async ({ t }) => {
    const a = createChatClient({ url: t.url, token: await t.token('dm-a4'), markReadEveryMs: 300 });
    const b = createChatClient({ url: t.url, token: await t.token('dm-b4'), markReadEveryMs: 300 });
    const room = await a.rooms.open.mutate({ otherUserId: 'dm-b4' });
    await b.rooms.accept.mutate({ roomId: room.id });
    const watching = record(a, room.id, '0');
    const receiving = record(b, room.id, '0');
    await Promise.all([watching.started, receiving.started]);
    await sendMany(a, room.id, 1, 20);
    await receiving.waitForMessages(20);
    await vi.waitFor(() => expect(watching.events.filter((e) => e.type === 'delivered').at(-1)).toMatchObject({ user: 'dm-b4', seq: 20 }));
    const changes = await t.sql<{ user: string; n: number }>(`select event->>'user' as user, count(*)::int as n from room_changes where chat_room_id = $1 and event->>'type' = 'delivered' group by 1`, [room.id]);
    // b's client marked 20 messages in a few calls; a's client never marked its own messages.
    expect(changes).toHaveLength(1);
    expect(changes[0]!.user).toBe('dm-b4');
    expect(changes[0]!.n).toBeLessThanOrEqual(5);
    await vi.waitFor(async () => expect((await a.rooms.list.query()).items.find((r) => r.id === room.id)).toMatchObject({ other_delivered_seq: 20 }));
    for (const s of [watching, receiving]) s.unsubscribe();
    await Promise.all([a.close(), b.close()]);
  });

  it('the messages an inbox stream brings; `deliveryReceipts: false` marks none', async ({ t }) => {
    const a = createChatClient({ url: t.url, token: await t.token('dm-a5') });
    const b = createChatClient({ url: t.url, token: await t.token('dm-b5') });
    const quiet = createChatClient({ url: t.url, token: await t.token('dm-c5'), deliveryReceipts: false });
    const room = await a.rooms.open.mutate({ otherUserId: 'dm-b5' });
    await b.rooms.accept.mutate({ roomId: room.id });
    const quietRoom = await a.rooms.open.mutate({ otherUserId: 'dm-c5' });
    const ready = (client: typeof b) =>
      new Promise<{ unsubscribe(): void }>((resolve) => {
        const sub = client.rooms.onEvent.subscribe(undefined, { onData: (e) => e.type === 'ready' && resolve(sub) });
      });
    const subs = await Promise.all([ready(b), ready(quiet)]);
    await a.messages.send.mutate({ roomId: room.id, content: 'to b' });
    await a.messages.send.mutate({ roomId: quietRoom.id, content: 'to c' });
    await vi.waitFor(async () => expect(await t.sql('select user_id, seq::int from delivered_markers where chat_room_id = $1', [room.id])).toEqual([{ user_id: 'dm-b5', seq: 1 }]));
    await new Promise((r) => setTimeout(r, 300));
    expect(await t.sql('select user_id from delivered_markers where chat_room_id = $1', [quietRoom.id])).toEqual([]);
    for (const s of subs) s.unsubscribe();
    await Promise.all([a.close(), b.close(), quiet.close()]);
  });
});

it('ws/chat frames stay as they were: no delivered event reaches the legacy socket', async ({ t }) => {
  const a = createChatClient({ url: t.url, token: await t.token('dm-a6'), deliveryReceipts: false });
  const room = await a.rooms.open.mutate({ otherUserId: 'dm-b6' });
  await sendMany(a, room.id, 1, 1);
  const legacy = await openLegacySocket(t.url, 'dm-a6', 'dm-b6', await t.token('dm-a6'));
  const b = createChatClient({ url: t.url, token: await t.token('dm-b6'), deliveryReceipts: false });
  await b.messages.markDelivered.mutate({ roomId: room.id, seq: 1 });
  await a.messages.send.mutate({ roomId: room.id, content: 'after' });
  await vi.waitFor(() => expect(legacy.frames.length).toBeGreaterThan(0));
  await new Promise((r) => setTimeout(r, 200));
  expect(legacy.frames.map((f) => (f as { action: string }).action)).toEqual(['new_message']);
  legacy.close();
  await Promise.all([a.close(), b.close()]);
});
