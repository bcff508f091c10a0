import { describe, expect, vi } from 'vitest';
import type { InboxEvent, RoomEvent } from '../client-sdk/index.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs, sendMany } from './support/room-pair.ts';
import { record } from './support/subscription.ts';
import { appTest, type TestApp } from './support/test-app.ts';

const it = appTest(import.meta.filename);
let requests: ReturnType<typeof roomPairs> | undefined;
let accepted: ReturnType<typeof roomPairs> | undefined;
/** A room `a` opened and `b` has not answered. */
const freshRequest = (t: TestApp) => (requests ??= roomPairs(t, 'req', { request: true }))();
/** A room both have taken part in. */
const freshRoom = (t: TestApp) => (accepted ??= roomPairs(t, 'acc'))();
const speaksFor = (user: string) => (e: RoomEvent | InboxEvent) => 'user' in e && e.user === user;
const listed = async (client: Awaited<ReturnType<TestApp['client']>>, roomId: string, filter?: 'inbox' | 'requests' | 'archived' | 'all') =>
  (await client.rooms.list.query(filter ? { filter } : {})).items.find((r) => r.id === roomId);

describe('message requests', () => {
  it('the opener sees none of the recipient’s presence, typing or read markers until the recipient replies', async ({ t }) => {
    const { a, b, room, bId } = await freshRequest(t);
    const subA = record(a, room.id);
    const inboxA: InboxEvent[] = [];
    const inbox = a.rooms.onEvent.subscribe(undefined, { onData: (e) => inboxA.push(e) });
    await subA.started;
    await vi.waitFor(() => expect(inboxA).toContainEqual({ type: 'ready' }));
    await sendMany(a, room.id, 1, 2);
    // b comes online, types and reads.
    const subB = record(b, room.id);
    await subB.started;
    await t.app.services.presence.settled();
    expect(await b.messages.typing.mutate({ roomId: room.id })).toEqual({ delivered: true });
    await b.messages.markRead.mutate({ roomId: room.id, seq: 2 });
    // Published after everything above: once a has it, a would have had the rest.
    await a.messages.send.mutate({ roomId: room.id, content: 'barrier' });
    await subA.waitForMessages(3);
    await vi.waitFor(() => expect(inboxA.filter((e) => e.type === 'message')).toHaveLength(3));
    expect(subA.events.filter(speaksFor(bId))).toEqual([]);
    expect(inboxA.filter(speaksFor(bId))).toEqual([]);
    expect(await listed(a, room.id)).toMatchObject({ request: 'sent', other_read_seq: 0, other: { user: bId, online: false, last_seen_at: null } });

    // b replies: from now on a sees b.
    await b.messages.send.mutate({ roomId: room.id, content: 'hi back' });
    // Typing is throttled per user and room: it is sent again until one goes out.
    await vi.waitFor(
      async () => {
        await b.messages.typing.mutate({ roomId: room.id });
        expect(subA.events.filter(speaksFor(bId)).map((e) => e.type)).toContain('typing');
      },
      { timeout: 5000, interval: 300 },
    );
    expect(await listed(a, room.id)).toMatchObject({ request: null, other_read_seq: 2, other: { user: bId, online: true } });
    expect(await listed(b, room.id)).toMatchObject({ request: null });
    for (const s of [subA, subB]) s.unsubscribe();
    inbox.unsubscribe();
  });

  it.for(['accepts', 'replies'] as const)('when the recipient %s, the opener’s open room and inbox streams hear the recipient’s presence as it is then, without waiting for its next change', async (answer, { t }) => {
    const { a, b, room, bId } = await freshRequest(t);
    // b is online before a watches: the change that said so was hidden from a, and none follows.
    const subB = record(b, room.id);
    await subB.started;
    await t.app.services.presence.settled();
    const subA = record(a, room.id);
    const inboxA: InboxEvent[] = [];
    const inbox = a.rooms.onEvent.subscribe(undefined, { onData: (e) => inboxA.push(e) });
    await subA.started;
    await vi.waitFor(() => expect(inboxA).toContainEqual({ type: 'ready' }));
    if (answer === 'accepts') await b.rooms.accept.mutate({ roomId: room.id });
    else await b.messages.send.mutate({ roomId: room.id, content: 'hello' });
    const online = { type: 'presence', user: bId, online: true, last_seen_at: null };
    await vi.waitFor(() => expect(subA.events.filter((e) => e.type === 'presence')).toEqual([online]));
    await vi.waitFor(() => expect(inboxA.filter((e) => e.type === 'presence')).toEqual([online]));
    for (const s of [subA, subB]) s.unsubscribe();
    inbox.unsubscribe();
  });

  it('the recipient lists requests apart; the default list holds the rooms one opened or accepted', async ({ t }) => {
    const { a, b, room, aId } = await freshRequest(t);
    await a.messages.send.mutate({ roomId: room.id, content: 'hello?' });
    expect(await listed(b, room.id)).toBeUndefined();
    expect(await listed(b, room.id, 'requests')).toMatchObject({ request: 'received', unread: 1, other: { user: aId } });
    expect(await listed(a, room.id)).toMatchObject({ request: 'sent' });
    expect(await listed(a, room.id, 'requests')).toBeUndefined();
    expect(await b.rooms.accept.mutate({ roomId: room.id })).toEqual({ roomId: room.id, status: 'accepted' });
    expect(await b.rooms.accept.mutate({ roomId: room.id })).toEqual({ roomId: room.id, status: 'accepted' });
    expect(await listed(b, room.id)).toMatchObject({ request: null });
    expect(await listed(b, room.id, 'requests')).toBeUndefined();
    // Only the recipient answers, and a conversation once accepted is not declined (block or archive it).
    expect(await rejection(a.rooms.accept.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    expect(await rejection(b.rooms.decline.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    const stranger = await t.client('req-stranger');
    expect(await rejection(stranger.rooms.accept.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
  });

  it('a declined request is hidden from the recipient and refuses the opener’s sends and typing as a block does, until accepted', async ({ t }) => {
    const { a, b, room, aId, bId } = await freshRequest(t);
    await a.messages.send.mutate({ roomId: room.id, content: 'buy my stuff' });
    expect(await b.rooms.decline.mutate({ roomId: room.id })).toEqual({ roomId: room.id, status: 'declined' });
    const neutral = 'You cannot send messages in this conversation.';
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'again' }))).toEqual({ code: 'FORBIDDEN', parleyCode: 'BLOCKED', message: neutral });
    expect(await rejection(a.messages.typing.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'BLOCKED' });
    const rest = await fetch(`${t.url}/${room.id}/messages/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await t.token(aId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'over rest', chat_room: room.id, sender: aId }),
    });
    expect({ status: rest.status, body: await rest.json() }).toEqual({ status: 403, body: { detail: neutral } });
    const legacy = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    legacy.send({ action: 'new_message', message: 'over ws', sender: aId, chat_room: room.id, other_user: bId });
    expect(await legacy.waitFor((f) => f.action === 'error')).toMatchObject({ code: 'BLOCKED', detail: neutral });
    legacy.close();
    // Hidden from b's lists; the opener is not told (it still reads as unanswered).
    expect(await listed(b, room.id)).toBeUndefined();
    expect(await listed(b, room.id, 'requests')).toBeUndefined();
    expect(await listed(b, room.id, 'all')).toMatchObject({ request: 'declined' });
    expect(await listed(a, room.id)).toMatchObject({ request: 'sent' });
    // b changes their mind.
    await b.rooms.accept.mutate({ roomId: room.id });
    expect((await a.messages.send.mutate({ roomId: room.id, content: 'thanks' })).seq).toBe(2);
  });

  it('ws/chat: a room opened over the legacy socket is a request too; the recipient’s first send accepts it', async ({ t }) => {
    const [aId, bId] = ['leg-a', 'leg-b'];
    const b = await t.client(bId);
    const legacyA = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    const [room] = (await t.sql<{ id: string }>('select id from chat_rooms where participant1_id = $1 and participant2_id = $2', [aId, bId])) as [{ id: string }];
    legacyA.send({ action: 'new_message', message: 'hello from legacy', sender: aId, chat_room: room.id, other_user: bId });
    await legacyA.waitFor((f) => f.action === 'new_message');
    // b's typing does not reach the opener's legacy socket while the request is unanswered.
    await b.messages.typing.mutate({ roomId: room.id });
    legacyA.send({ action: 'new_message', message: 'barrier', sender: aId, chat_room: room.id, other_user: bId });
    await legacyA.waitFor((f) => f.action === 'new_message' && f.message.content === 'barrier');
    expect(legacyA.frames.filter((f) => f.action === 'typing')).toEqual([]);
    // b answers over its own legacy socket: accepted, and b's typing now reaches a.
    const legacyB = await openLegacySocket(t.url, bId, aId, await t.token(bId));
    legacyB.send({ action: 'new_message', message: 'hi', sender: bId, chat_room: room.id, other_user: aId });
    await legacyA.waitFor((f) => f.action === 'new_message' && f.message.content === 'hi');
    await vi.waitFor(async () => expect(await listed(b, room.id)).toMatchObject({ request: null }));
    await vi.waitFor(
      () => {
        legacyB.send({ action: 'typing', chat_room: room.id, other_user: aId });
        expect(legacyA.frames.find((f) => f.action === 'typing')).toEqual({ action: 'typing', chat_room: room.id, user: bId });
      },
      { timeout: 5000, interval: 300 },
    );
    // The legacy list still shows every room, requests included.
    const other = await t.client('leg-c');
    await other.rooms.open.mutate({ otherUserId: bId });
    const res = await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${await t.token(bId)}` } });
    expect(((await res.json()) as Array<{ participant1: string }>).map((r) => r.participant1).sort()).toEqual(['leg-a', 'leg-c']);
    legacyA.close();
    legacyB.close();
  });

  it('the opener’s sends ask nothing of the request once the room is known: only the recipient’s can answer it', async ({ t }) => {
    const { a, b, room, aId, bId } = await freshRequest(t);
    await a.messages.send.mutate({ roomId: room.id, content: 'first' });
    await a.messages.send.mutate({ roomId: room.id, content: 'second' });
    // Answered from memory (no promise, nothing to wait for): the opener cannot accept their own request.
    expect(t.app.services.requests.replied(room.id, aId)).toBeUndefined();
    expect(await listed(b, room.id, 'requests')).toMatchObject({ request: 'received' });
    // The recipient's send is still the one that accepts it.
    await b.messages.send.mutate({ roomId: room.id, content: 'hi' });
    expect(await listed(b, room.id)).toMatchObject({ request: null });
    expect(t.app.services.requests.replied(room.id, bId)).toBeUndefined();
  });
});

describe('privacy settings', () => {
  it('showPresence off hides one’s presence from everyone, and everyone’s from oneself', async ({ t }) => {
    const { a, b, room, aId, bId } = await freshRoom(t);
    expect(await b.users.updatePrivacy.mutate({})).toEqual({ showPresence: true, sendReadReceipts: true });
    expect(await b.users.updatePrivacy.mutate({ showPresence: false })).toEqual({ showPresence: false, sendReadReceipts: true });
    const subA = record(a, room.id);
    const subB = record(b, room.id);
    await Promise.all([subA.started, subB.started]);
    await t.app.services.presence.settled();
    await a.messages.send.mutate({ roomId: room.id, content: 'barrier' });
    await Promise.all([subA.waitForMessages(1), subB.waitForMessages(1)]);
    expect(subA.events.filter((e) => e.type === 'presence')).toEqual([]);
    expect(subB.events.filter((e) => e.type === 'presence')).toEqual([]);
    expect(await listed(a, room.id)).toMatchObject({ other: { user: bId, online: false, last_seen_at: null } });
    expect(await listed(b, room.id)).toMatchObject({ other: { user: aId, online: false, last_seen_at: null } });
    // Typing is not presence: it still goes through.
    await b.messages.typing.mutate({ roomId: room.id });
    await vi.waitFor(() => expect(subA.events.some((e) => e.type === 'typing')).toBe(true));
    await b.users.updatePrivacy.mutate({ showPresence: true });
    expect(await listed(a, room.id)).toMatchObject({ other: { user: bId, online: true } });
    for (const s of [subA, subB]) s.unsubscribe();
  });

  it('sendReadReceipts off hides one’s read markers from the other, and the other’s from oneself; unread counts stay exact', async ({ t }) => {
    const { a, b, room, aId, bId } = await freshRoom(t);
    await sendMany(a, room.id, 1, 2);
    await sendMany(b, room.id, 3, 3);
    await b.users.updatePrivacy.mutate({ sendReadReceipts: false });
    const subA = record(a, room.id);
    await subA.started;
    await b.messages.markRead.mutate({ roomId: room.id, seq: 3 });
    await a.messages.markRead.mutate({ roomId: room.id, seq: 3 });
    await b.messages.send.mutate({ roomId: room.id, content: 'barrier' });
    await subA.waitForMessages(1);
    expect(subA.events.filter(speaksFor(bId))).toEqual([]);
    expect(await listed(a, room.id)).toMatchObject({ other_read_seq: 0 });
    expect(await listed(b, room.id)).toMatchObject({ other_read_seq: 0, read_seq: 3, unread: 0 });
    // Receipts back on: both markers show again.
    await b.users.updatePrivacy.mutate({ sendReadReceipts: true });
    expect(await listed(a, room.id)).toMatchObject({ other_read_seq: 3 });
    expect(await listed(b, room.id)).toMatchObject({ other_read_seq: 3, other: { user: aId } });
    subA.unsubscribe();
  });

  it('last_seen_at is given to the minute', async ({ t }) => {
    const { a, room, bId } = await freshRoom(t);
    const b2 = await t.client(bId);
    const sub = record(b2, room.id);
    await sub.started;
    await t.app.services.presence.settled();
    sub.unsubscribe();
    await b2.close();
    await vi.waitFor(async () => expect((await listed(a, room.id))?.other.last_seen_at).toEqual(expect.any(String)), { timeout: 15_000 });
    const seen = new Date((await listed(a, room.id))!.other.last_seen_at!);
    expect(seen.getUTCSeconds() * 1000 + seen.getUTCMilliseconds()).toBe(0);
    expect(Date.now() - seen.getTime()).toBeLessThan(2 * 60_000);
  });
});

describe('archiving', () => {
  it('hides a room from rooms.list until a new message arrives; unarchive shows it again', async ({ t }) => {
    const { a, b, room } = await freshRoom(t);
    await sendMany(a, room.id, 1, 1);
    expect(await b.rooms.archive.mutate({ roomId: room.id })).toEqual({ roomId: room.id, archived: true });
    expect(await listed(b, room.id)).toBeUndefined();
    expect(await listed(b, room.id, 'archived')).toMatchObject({ archived: true });
    // Only for the one who archived it.
    expect(await listed(a, room.id)).toMatchObject({ archived: false });
    await a.messages.send.mutate({ roomId: room.id, content: 'anyone?' });
    expect(await listed(b, room.id)).toMatchObject({ archived: false, unread: 2 });
    expect(await listed(b, room.id, 'archived')).toBeUndefined();
    await b.rooms.archive.mutate({ roomId: room.id });
    expect(await b.rooms.unarchive.mutate({ roomId: room.id })).toEqual({ roomId: room.id, archived: false });
    expect(await listed(b, room.id)).toMatchObject({ archived: false });
    const stranger = await t.client('arch-stranger');
    expect(await rejection(stranger.rooms.archive.mutate({ roomId: room.id }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
  });
});
