import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { InboxEvent, RoomEvent } from '../client-sdk/index.ts';
import { openLegacySocket, upgradeStatus } from './support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp } from './support/raw-trpc.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs, sendMany } from './support/room-pair.ts';
import { record } from './support/subscription.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

let t: TestApp;
let freshRoom: ReturnType<typeof roomPairs>;
beforeAll(async () => {
  t = await startTestApp(import.meta.filename);
  freshRoom = roomPairs(t, 's');
});
afterAll(() => t?.close());
const NEUTRAL = 'You cannot send messages in this conversation.';

async function restSend(userId: string, roomId: string, content: string) {
  const res = await fetch(`${t.url}/${roomId}/messages/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await t.token(userId)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content, chat_room: roomId, sender: userId }),
  });
  return { status: res.status, body: await res.text() };
}

async function storedCount(roomId: string) {
  const [row] = await t.sql<{ n: number }>('select count(*)::int as n from messages where chat_room_id = $1', [roomId]);
  return row!.n;
}

describe('blocking', () => {
  it('refuses sends between the pair, both ways, on REST, ws/chat, tRPC HTTP and tRPC WebSocket, and stores nothing', async () => {
    const { a, room, aId, bId } = await freshRoom();
    await sendMany(a, room.id, 1, 2);
    const legacyB = await openLegacySocket(t.url, bId, aId, await t.token(bId));
    expect(await a.users.block.mutate({ userId: bId })).toEqual({ user: bId, blocked_at: expect.any(String) });

    expect(await restSend(bId, room.id, 'rest')).toEqual({ status: 403, body: JSON.stringify({ detail: NEUTRAL }) });
    legacyB.send({ action: 'new_message', message: 'ws', sender: bId, chat_room: room.id, other_user: aId });
    expect(await legacyB.waitFor((f) => f.action === 'error')).toEqual({ action: 'error', code: 'BLOCKED', detail: NEUTRAL });
    const http = await trpcHttp(t.url, 'messages.send', { roomId: room.id, content: 'http' }, await t.token(bId));
    expect(http).toMatchObject({ status: 403, error: { message: NEUTRAL, data: { code: 'FORBIDDEN', httpStatus: 403, parleyCode: 'BLOCKED' } } });
    const socket = await openTrpcSocket(t.url, await t.token(bId));
    const overWs = await socket.call('mutation', 'messages.send', { roomId: room.id, content: 'ws', clientId: 'c1' });
    expect(overWs.error).toMatchObject({ message: NEUTRAL, data: { code: 'FORBIDDEN', parleyCode: 'BLOCKED' } });
    // The one who blocked cannot write either until they unblock: the same neutral refusal.
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'from a' }))).toEqual({ code: 'FORBIDDEN', parleyCode: 'BLOCKED', message: NEUTRAL });
    expect(await storedCount(room.id)).toBe(2);
    // The socket stays open, and a bad frame is still told apart from a blocked one.
    expect(legacyB.ws.readyState).toBe(legacyB.ws.OPEN);
    socket.close();
    legacyB.close();
  });

  it('keeps history readable for both, on tRPC and REST, and an existing room still opens (ws/chat included)', async () => {
    const { a, b, room, aId, bId } = await freshRoom();
    const sent = await sendMany(a, room.id, 1, 3);
    await b.users.block.mutate({ userId: aId });
    expect((await a.messages.list.query({ roomId: room.id })).items).toEqual(sent);
    expect((await b.messages.list.query({ roomId: room.id })).items).toEqual(sent);
    const res = await fetch(`${t.url}/${room.id}/messages/`, { headers: { authorization: `Bearer ${await t.token(aId)}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as unknown[]).length).toBe(3);
    expect((await a.rooms.open.mutate({ otherUserId: bId })).id).toBe(room.id);
    const legacyA = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    legacyA.close();
  });

  it('refuses a new room between the pair on every surface, whoever asks', async () => {
    const [cId, dId] = ['s-c', 's-d'];
    const [c, d] = await Promise.all([t.client(cId), t.client(dId)]);
    await c.users.block.mutate({ userId: dId });
    const started = 'You cannot start a conversation with this user.';
    expect(await rejection(d.rooms.open.mutate({ otherUserId: cId }))).toEqual({ code: 'FORBIDDEN', parleyCode: 'BLOCKED', message: started });
    expect(await rejection(c.rooms.open.mutate({ otherUserId: dId }))).toMatchObject({ parleyCode: 'BLOCKED' });
    const rest = await fetch(`${t.url}/rooms/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await t.token(dId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ other_user: cId }),
    });
    expect({ status: rest.status, body: await rest.json() }).toEqual({ status: 403, body: { detail: started } });
    expect(await upgradeStatus(t.url, `/ws/chat/${dId}/${cId}/?token=${await t.token(dId)}`)).toBe(403);
    expect(await t.sql('select id from chat_rooms where participant1_id in ($1, $2) and participant2_id in ($1, $2)', [cId, dId])).toEqual([]);
  });

  it("refuses typing, and neither side receives the other's typing, presence, read or delivered markers", async () => {
    const { a, b, room, aId, bId } = await freshRoom();
    const [m1] = await sendMany(a, room.id, 1, 2);
    await a.users.block.mutate({ userId: bId });
    const subA = record(a, room.id);
    const subB = record(b, room.id);
    const inboxA: InboxEvent[] = [];
    const inbox = a.rooms.onEvent.subscribe(undefined, { onData: (e) => inboxA.push(e) });
    const legacyA = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    await Promise.all([subA.started, subB.started]);
    await vi.waitFor(() => expect(inboxA).toContainEqual({ type: 'ready' }));

    expect(await rejection(b.messages.typing.mutate({ roomId: room.id }))).toMatchObject({ code: 'FORBIDDEN', parleyCode: 'BLOCKED' });
    const legacyB = await openLegacySocket(t.url, bId, aId, await t.token(bId));
    legacyB.send({ action: 'typing', chat_room: room.id, other_user: aId });
    expect(await legacyB.waitFor((f) => f.action === 'error')).toMatchObject({ code: 'BLOCKED' });
    // Marking read is allowed (it is the reader's own unread count), but not shown to the other.
    expect(await b.messages.markRead.mutate({ roomId: room.id, seq: 2 })).toEqual({ seq: 2 });
    expect(await b.messages.markDelivered.mutate({ roomId: room.id, seq: 2 })).toEqual({ seq: 2 });
    await t.app.services.presence.settled();
    // A deletion is still delivered to both: once it arrived, anything published before it would have too.
    await a.messages.delete.mutate({ roomId: room.id, messageId: m1!.id });
    const deletedSeen = (events: Array<RoomEvent | InboxEvent>) => expect(events.some((e) => e.type === 'message_deleted')).toBe(true);
    await vi.waitFor(() => [subA.events, subB.events, inboxA].forEach(deletedSeen));
    const speaksFor = (user: string) => (e: RoomEvent | InboxEvent) => 'user' in e && e.user === user;
    expect(subA.events.filter(speaksFor(bId))).toEqual([]);
    expect(inboxA.filter(speaksFor(bId))).toEqual([]);
    expect(subB.events.filter(speaksFor(aId))).toEqual([]);
    expect(legacyA.frames).toEqual([]);
    const [row] = (await a.rooms.list.query()).items.filter((r) => r.id === room.id);
    expect(row).toMatchObject({ other_read_seq: 0, other_delivered_seq: 0, other: { user: bId, online: false, last_seen_at: null } });
    // A resumed stream does not replay the hidden marker either.
    const replay = record(a, room.id, '0');
    await vi.waitFor(() => expect(replay.events.some((e) => e.type === 'message_deleted')).toBe(true));
    expect(replay.events.filter(speaksFor(bId))).toEqual([]);
    for (const s of [subA, subB, replay]) s.unsubscribe();
    inbox.unsubscribe();
    legacyA.close();
    legacyB.close();
  });

  it('unblocking restores sends, typing and read markers, with every message kept and seqs continuing', async () => {
    const { a, b, room, aId, bId } = await freshRoom();
    const before = await sendMany(a, room.id, 1, 2);
    await a.users.block.mutate({ userId: bId });
    await rejection(b.messages.send.mutate({ roomId: room.id, content: 'refused' }));
    expect(await a.users.unblock.mutate({ userId: bId })).toEqual({ user: bId, unblocked: true });
    expect(await a.users.unblock.mutate({ userId: bId })).toEqual({ user: bId, unblocked: false });
    const subA = record(a, room.id, '2');
    await subA.started;
    await b.messages.typing.mutate({ roomId: room.id });
    const after = await b.messages.send.mutate({ roomId: room.id, content: 'back' });
    await b.messages.markRead.mutate({ roomId: room.id, seq: 3 });
    expect(after.seq).toBe(3);
    expect((await restSend(aId, room.id, 'rest again')).status).toBe(201);
    await vi.waitFor(() => expect(subA.events.map((e) => e.type)).toEqual(expect.arrayContaining(['typing', 'message', 'read'])));
    expect((await b.messages.list.query({ roomId: room.id })).items.map((m) => m.content)).toEqual([...before.map((m) => m.content), 'back', 'rest again']);
    subA.unsubscribe();
  });

  it('unblocking shows the other’s presence as it is then on the open streams of the one who blocked', async () => {
    const { a, b, room, bId } = await freshRoom();
    await a.users.block.mutate({ userId: bId });
    const subB = record(b, room.id);
    await subB.started;
    await t.app.services.presence.settled();
    const subA = record(a, room.id);
    await subA.started;
    await a.users.unblock.mutate({ userId: bId });
    await vi.waitFor(() => expect(subA.events.filter((e) => e.type === 'presence')).toEqual([{ type: 'presence', user: bId, online: true, last_seen_at: null }]));
    for (const s of [subA, subB]) s.unsubscribe();
  });

  it('block is idempotent and private to the blocker; listBlocked pages by user id; blocking yourself is refused', async () => {
    const me = await t.client('s-lister');
    const first = await me.users.block.mutate({ userId: 's-x2' });
    expect(await me.users.block.mutate({ userId: 's-x2' })).toEqual(first);
    await me.users.block.mutate({ userId: 's-x1' });
    await me.users.block.mutate({ userId: 's-x3' });
    const page1 = await me.users.listBlocked.query({ limit: 2 });
    expect(page1.items.map((i) => i.user)).toEqual(['s-x1', 's-x2']);
    const page2 = await me.users.listBlocked.query({ limit: 2, cursor: page1.nextCursor! });
    expect(page2).toEqual({ items: [{ user: 's-x3', blocked_at: expect.any(String) }], nextCursor: null });
    expect((await (await t.client('s-x1')).users.listBlocked.query()).items).toEqual([]);
    expect(await rejection(me.users.block.mutate({ userId: 's-lister' }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
  });
});

describe('reports', () => {
  it('keep the message as it was when reported: a later edit or deletion changes the message, not the report', async () => {
    const { a, b, room } = await freshRoom();
    const [m1] = await sendMany(a, room.id, 1, 1);
    const report = await b.reports.create.mutate({ roomId: room.id, messageId: m1!.id, reason: 'harassment', note: 'rude' });
    expect(report).toEqual({
      id: expect.any(String),
      chat_room: room.id,
      message_id: m1!.id,
      reported_user: m1!.sender,
      reason: 'harassment',
      note: 'rude',
      status: 'open',
      created_at: expect.any(String),
      message: m1,
    });
    await a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'nice words' });
    await a.messages.delete.mutate({ roomId: room.id, messageId: m1!.id });
    // Once per reporter and message: a repeat (even with another reason) answers the first report.
    expect(await b.reports.create.mutate({ roomId: room.id, messageId: m1!.id, reason: 'spam' })).toEqual(report);
    const [stored] = await t.sql<{ n: number; snapshot: unknown }>('select count(*)::int as n, min(message_snapshot::text)::jsonb as snapshot from reports where message_id = $1', [m1!.id]);
    expect(stored).toEqual({ n: 1, snapshot: m1 });
  });

  it('a conversation can be reported once per reporter; only participants may report, and only messages of that room', async () => {
    const { a, b, room, bId } = await freshRoom();
    const other = await freshRoom();
    const [theirs] = await sendMany(other.a, other.room.id, 1, 1);
    const whole = await a.reports.create.mutate({ roomId: room.id, reason: 'spam' });
    expect(whole).toMatchObject({ message_id: null, message: null, reported_user: bId, reason: 'spam', note: null });
    expect(await a.reports.create.mutate({ roomId: room.id, reason: 'other' })).toEqual(whole);
    expect(await rejection(other.a.reports.create.mutate({ roomId: room.id, reason: 'spam' }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
    expect(await rejection(b.reports.create.mutate({ roomId: room.id, messageId: theirs!.id, reason: 'spam' }))).toMatchObject({ parleyCode: 'MESSAGE_NOT_FOUND' });
    const badReason = await trpcHttp(t.url, 'reports.create', { roomId: room.id, reason: 'rude' }, await t.token(bId));
    expect(badReason.error?.data).toMatchObject({ parleyCode: 'INVALID_INPUT', details: { fields: { reason: [expect.any(String)] } } });
  });
});
