import { TRPCClientError } from '@trpc/client';
import { describe, expect, vi } from 'vitest';
import type { InboxEvent } from '../client-sdk/index.ts';
import { roomKey } from '../server/live/bus-key.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp } from './support/raw-trpc.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs, sendMany } from './support/room-pair.ts';
import { range, record } from './support/subscription.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename).extend<{ $file: { freshRoom: ReturnType<typeof roomPairs> } }>({
  freshRoom: [async ({ t }, use) => use(roomPairs(t, 'f')), { scope: 'file' }],
});

describe('room membership read for many sends at once', () => {
  it('sends to rooms this server has not read yet, all in one turn, each get their own answer', async ({ t }) => {
    // Rooms written straight to the table: the server has none of them cached.
    const sender = await t.client('colda');
    const others = ['coldb1', 'coldb2', 'coldb3', 'coldc1'];
    await t.sql(`insert into users (id) select unnest($1::text[]) on conflict do nothing`, [['colda', ...others]]);
    const rooms = await t.sql<{ id: string }>(
      `insert into chat_rooms (id, participant1_id, participant2_id, accepted_at) select gen_random_uuid(), case when o = 'coldc1' then 'coldb1' else 'colda' end, o, now() from unnest($1::text[]) o returning id`,
      [others],
    );
    const [mine1, mine2, mine3, notMine] = rooms.map((r) => r.id) as [string, string, string, string];
    const sends = [mine1, mine2, notMine, crypto.randomUUID(), mine3, mine1].map((roomId, i) => sender.messages.send.mutate({ roomId, content: `cold ${i}` }));
    const settled = await Promise.allSettled(sends);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled', 'fulfilled']);
    for (const i of [2, 3]) expect(await rejection(sends[i]!)).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
    expect(await t.sql('select chat_room_id as room, seq::int from messages where sender_id = $1 order by chat_room_id, seq', ['colda'])).toEqual(
      [
        { room: mine1, seq: 1 },
        { room: mine1, seq: 2 },
        { room: mine2, seq: 1 },
        { room: mine3, seq: 1 },
      ].sort((x, y) => (x.room < y.room ? -1 : x.room > y.room ? 1 : x.seq - y.seq)),
    );
  });
});

describe('read markers', () => {
  it('move forward only, are stored, reach the room as `read` events, and refuse a seq past the last', async ({ t, freshRoom }) => {
    const { a, b, room, bId } = await freshRoom();
    await sendMany(a, room.id, 1, 3);
    const subA = record(a, room.id, '3');
    await subA.started;
    expect(await b.messages.markRead.mutate({ roomId: room.id, seq: 2 })).toEqual({ seq: 2 });
    expect(await b.messages.markRead.mutate({ roomId: room.id, seq: 1 })).toEqual({ seq: 2 });
    expect(await rejection(b.messages.markRead.mutate({ roomId: room.id, seq: 4 }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    await vi.waitFor(() => expect(subA.events).toEqual([{ type: 'read', chat_room: room.id, user: bId, seq: 2, change_seq: 1 }]));
    expect(subA.lastId).toBe('3.1');
    expect(await t.sql('select seq::int from read_markers where chat_room_id = $1 and user_id = $2', [room.id, bId])).toEqual([{ seq: 2 }]);
    subA.unsubscribe();
  });
});

describe('presence on the room stream', () => {
  it("carries the other participant's presence, not the subscriber's own; `presence: false` leaves it out; ws/chat never sees it", async ({ t, freshRoom }) => {
    const { a, b, room, aId, bId } = await freshRoom();
    const subA = record(a, room.id);
    const quiet: string[] = [];
    const quietSub = a.messages.onEvent.subscribe({ roomId: room.id, presence: false }, { onData: ({ data }) => quiet.push(data.type) });
    const legacy = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    await subA.started;
    // b's first socket (an inbox subscription) makes b online; closing it, offline.
    const bInbox = b.rooms.onEvent.subscribe(undefined, { onData: () => {} });
    await vi.waitFor(() => expect(subA.events).toContainEqual({ type: 'presence', user: bId, online: true, last_seen_at: null }));
    bInbox.unsubscribe();
    await b.close();
    await vi.waitFor(() => expect(subA.events).toContainEqual({ type: 'presence', user: bId, online: false, last_seen_at: expect.any(String) }), { timeout: 15_000 });
    expect(subA.events.filter((e) => e.type === 'presence' && e.user === aId)).toEqual([]);
    // A later message reaches every stream after the presence events did: by then they would have shown.
    await a.messages.send.mutate({ roomId: room.id, content: 'after presence' });
    await vi.waitFor(() => expect(quiet).toContain('message'));
    await legacy.waitFor((f) => f.action === 'new_message');
    expect(quiet).toEqual(['message']);
    expect(legacy.frames.map((f) => f.action)).toEqual(['new_message']);
    legacy.close();
    quietSub.unsubscribe();
    subA.unsubscribe();
  });
});

describe('edit and delete', () => {
  it('the sender edits and deletes; the other side sees both live; history shows the current state with the seq kept', async ({ freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const [m1, m2] = await sendMany(a, room.id, 1, 2);
    const subB = record(b, room.id, '2');
    await subB.started;
    const edited = await a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'm1, edited' });
    expect(edited).toMatchObject({ id: m1!.id, seq: 1, content: 'm1, edited', edited_at: expect.any(String) });
    const deleted = await a.messages.delete.mutate({ roomId: room.id, messageId: m2!.id });
    expect(deleted).toMatchObject({ id: m2!.id, seq: 2, content: '', deleted_at: expect.any(String) });
    await vi.waitFor(() =>
      expect(subB.events).toEqual([
        { type: 'message_updated', message: edited, change_seq: 1 },
        { type: 'message_deleted', message: deleted, change_seq: 2 },
      ]),
    );
    const { items } = await b.messages.list.query({ roomId: room.id });
    expect(items).toEqual([edited, deleted]);
    subB.unsubscribe();
  });

  it('precise errors: not the sender, unknown message, deleted message, closed window, unknown room', async ({ t, freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const [m1, m2, m3] = await sendMany(a, room.id, 1, 3);
    expect(await rejection(b.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'x' }))).toMatchObject({ code: 'FORBIDDEN', parleyCode: 'FORBIDDEN' });
    expect(await rejection(b.messages.delete.mutate({ roomId: room.id, messageId: m1!.id }))).toMatchObject({ parleyCode: 'FORBIDDEN' });
    expect(await rejection(a.messages.edit.mutate({ roomId: room.id, messageId: crypto.randomUUID(), content: 'x' }))).toMatchObject({ code: 'NOT_FOUND', parleyCode: 'MESSAGE_NOT_FOUND' });
    await a.messages.delete.mutate({ roomId: room.id, messageId: m2!.id });
    expect(await rejection(a.messages.edit.mutate({ roomId: room.id, messageId: m2!.id, content: 'x' }))).toMatchObject({ code: 'CONFLICT', parleyCode: 'MESSAGE_DELETED' });
    expect(await rejection(a.messages.delete.mutate({ roomId: room.id, messageId: m2!.id }))).toMatchObject({ parleyCode: 'MESSAGE_DELETED' });
    await t.sql("update messages set created_at = now() - interval '16 minutes' where id = $1", [m3!.id]);
    expect(await rejection(a.messages.edit.mutate({ roomId: room.id, messageId: m3!.id, content: 'late' }))).toMatchObject({ code: 'CONFLICT', parleyCode: 'EDIT_WINDOW_CLOSED' });
    // Deleting has no window.
    await a.messages.delete.mutate({ roomId: room.id, messageId: m3!.id });
    expect(await rejection(a.messages.edit.mutate({ roomId: crypto.randomUUID(), messageId: m1!.id, content: 'x' }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
    expect(await rejection(a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: '   ' }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    expect((await a.messages.list.query({ roomId: room.id })).items.map((m) => m.content)).toEqual(['m1', '', '']);
  });

  it('legacy surfaces keep their wire: no frames for edits, deletes or reads; history shows current content, deleted as empty', async ({ t, freshRoom }) => {
    const { a, room, aId, bId } = await freshRoom();
    const legacy = await openLegacySocket(t.url, bId, aId, await t.token(bId));
    const [m1, m2] = await sendMany(a, room.id, 1, 2);
    await legacy.waitFor((f) => f.action === 'new_message' && f.message.content === 'm2');
    await a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'new' });
    await a.messages.delete.mutate({ roomId: room.id, messageId: m2!.id });
    await sendMany(a, room.id, 3, 3);
    await legacy.waitFor((f) => f.action === 'new_message' && f.message.content === 'm3');
    expect(legacy.frames.map((f) => f.action)).toEqual(['new_message', 'new_message', 'new_message']);
    legacy.close();
    const res = await fetch(`${t.url}/${room.id}/messages/`, { headers: { authorization: `Bearer ${await t.token(bId)}` } });
    const history = (await res.json()) as Array<Record<string, unknown>>;
    expect(history.map((m) => m.content)).toEqual(['new', '', 'm3']);
    expect(Object.keys(history[0]!).sort()).toEqual(['chat_room', 'content', 'created_at', 'id', 'sender']);
  });
});

describe('history both ways', () => {
  it('backward pages from the newest cover every message once; forward stays the default', async ({ freshRoom }) => {
    const { a, room } = await freshRoom();
    await Promise.all(range(1, 45).map((n) => a.messages.send.mutate({ roomId: room.id, content: `m${n}`, clientId: `c${n}` })));
    const pages: number[][] = [];
    let cursor: number | undefined;
    do {
      const page = await a.messages.list.query({ roomId: room.id, limit: 20, direction: 'backward', ...(cursor !== undefined ? { cursor } : {}) });
      pages.push(page.items.map((m) => m.seq));
      cursor = page.nextCursor ?? undefined;
    } while (cursor !== undefined);
    expect(pages).toEqual([range(26, 45), range(6, 25), range(1, 5)]);
    const first = await a.messages.list.query({ roomId: room.id, limit: 10 });
    expect(first.items.map((m) => m.seq)).toEqual(range(1, 10));
    expect(first.nextCursor).toBe(10);
  });

  it('pages asked for at once (one statement) equal the same pages asked one by one, over rooms, directions and cursors', async ({ t, freshRoom }) => {
    const rooms = await Promise.all([freshRoom(), freshRoom(), freshRoom()]);
    await Promise.all(rooms.map(({ a, room }, i) => sendMany(a, room.id, 1, 5 + 3 * i)));
    await rooms[0]!.a.messages.edit.mutate({ roomId: rooms[0]!.room.id, messageId: (await rooms[0]!.a.messages.list.query({ roomId: rooms[0]!.room.id })).items[1]!.id, content: 'edited' });
    const { messages } = t.app.services;
    const asks = rooms.flatMap(({ room }) => [
      { roomId: room.id, direction: 'forward' as const, cursor: null, limit: 50 },
      { roomId: room.id, direction: 'forward' as const, cursor: 2, limit: 3 },
      { roomId: room.id, direction: 'backward' as const, cursor: null, limit: 4 },
      { roomId: room.id, direction: 'backward' as const, cursor: 4, limit: 50 },
    ]);
    // Asked in one turn of the event loop: read together, the repeated ask answered once.
    const together = await Promise.all([...asks, asks[0]!].map((ask) => messages.page(ask.roomId, ask)));
    const oneByOne = [];
    for (const ask of [...asks, asks[0]!]) oneByOne.push(await messages.page(ask.roomId, ask));
    expect(together).toEqual(oneByOne);
    expect(together[0]!.items.map((m) => m.content)).toEqual(['m1', 'edited', 'm3', 'm4', 'm5']);
    expect(together[0]!.lastEventId).toBe('5.1');
    expect(together.slice(4, 8).map((p) => [p.items.map((m) => m.seq), p.nextCursor])).toEqual([
      [range(1, 8), null],
      [[3, 4, 5], 5],
      [[5, 6, 7, 8], 5],
      [[1, 2, 3], null],
    ]);
  });

  it('a read asked for right after a send returns, beside other reads, includes the message', async ({ t, freshRoom }) => {
    const [{ a, room }, other] = await Promise.all([freshRoom(), freshRoom()]);
    const { messages } = t.app.services;
    for (const n of range(1, 20)) {
      const sent = await a.messages.send.mutate({ roomId: room.id, content: `m${n}` });
      const [page] = await Promise.all([messages.page(room.id, { direction: 'backward', cursor: null, limit: 1 }), messages.page(other.room.id, { direction: 'forward', cursor: null, limit: 1 })]);
      expect(page.items.map((m) => m.id)).toEqual([sent.id]);
    }
  });
});

describe('a room id in capitals', () => {
  it('names the same room: a subscription made with it hears live what is sent with the id in small letters, and the other way round', async ({ freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const upper = record(a, room.id.toUpperCase());
    const lower = record(b, room.id);
    await Promise.all([upper.started, lower.started]);
    // Live delivery takes milliseconds; no re-read of the database would bring these in time.
    await b.messages.send.mutate({ roomId: room.id, content: 'small' });
    await upper.waitForMessages(1, 2_000);
    await a.messages.send.mutate({ roomId: room.id.toUpperCase(), content: 'capitals' });
    await Promise.all([upper.waitForMessages(2, 2_000), lower.waitForMessages(2, 2_000)]);
    expect([upper.seqs(), lower.seqs()]).toEqual([[1, 2], [1, 2]]);
    upper.unsubscribe();
    lower.unsubscribe();
  });
});

describe('resume covers every change', () => {
  it('a subscriber away for messages, an edit, a delete and a read marker gets each once, in commit order', async ({ freshRoom }) => {
    const { a, b, room, bId } = await freshRoom();
    const watcher = record(a, room.id, '0');
    const [m1] = await sendMany(a, room.id, 1, 2);
    await watcher.waitForMessages(2);
    const away = record(b, room.id, '0');
    await away.waitForMessages(2);
    away.unsubscribe();
    const resumeFrom = away.lastId;
    expect(resumeFrom).toBe('2');
    await a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'edited' });
    const [m3] = await sendMany(a, room.id, 3, 3);
    await b.messages.markRead.mutate({ roomId: room.id, seq: 3 });
    await a.messages.delete.mutate({ roomId: room.id, messageId: m3!.id });
    await sendMany(a, room.id, 4, 4);
    await watcher.waitForMessages(4);
    // b's socket coming and going also puts presence events on a's stream: not stored, never replayed.
    const stored = (r: typeof watcher) => r.events.filter((e) => e.type !== 'presence');
    await vi.waitFor(() => expect(stored(watcher)).toHaveLength(7));
    const resumed = record(b, room.id, resumeFrom);
    await vi.waitFor(() => expect(stored(resumed)).toHaveLength(5));
    // Proving no duplicate or stray replay follows takes waiting: the lists below must be exact.
    await new Promise((r) => setTimeout(r, 200));
    const summary = (e: (typeof resumed.events)[number]) => (e.type === 'message' ? `m${e.message.seq}` : e.type === 'read' ? `read${e.seq}` : 'message' in e ? `${e.type}:${e.message.seq}` : e.type);
    expect(stored(resumed).map(summary)).toEqual(['message_updated:1', 'm3', 'read3', 'message_deleted:3', 'm4']);
    expect(stored(watcher).slice(2).map(summary)).toEqual(stored(resumed).map(summary));
    expect(resumed.lastId).toBe('4.3');
    // A resumed message is replayed in its current state; the change events follow it.
    expect(stored(resumed)[1]).toMatchObject({ type: 'message', message: { seq: 3, content: '', deleted_at: expect.any(String) } });
    expect(stored(resumed)[2]).toEqual({ type: 'read', chat_room: room.id, user: bId, seq: 3, change_seq: 2 });
    // A resume point past the room's newest change is refused, like one past its last seq.
    const ahead = record(b, room.id, '4.9');
    await vi.waitFor(() => expect(ahead.errors).toHaveLength(1));
    expect((ahead.errors[0] as TRPCClientError<never>).data).toMatchObject({ parleyCode: 'INVALID_INPUT' });
    for (const s of [watcher, resumed, ahead]) s.unsubscribe();
  });

  it('a page’s lastEventId hands history over to the subscription: only what is newer follows', async ({ freshRoom }) => {
    const { a, b, room } = await freshRoom();
    const [m1] = await sendMany(a, room.id, 1, 3);
    await a.messages.edit.mutate({ roomId: room.id, messageId: m1!.id, content: 'edited before' });
    const page = await b.messages.list.query({ roomId: room.id, direction: 'backward', limit: 50 });
    expect(page.lastEventId).toBe('3.1');
    const sub = record(b, room.id, page.lastEventId);
    await sub.started;
    await sendMany(a, room.id, 4, 5);
    // The stream is in commit order: anything replayed from history would arrive before m5.
    await sub.waitForMessages(2);
    expect(sub.events.map((e) => (e.type === 'message' ? `m${e.message.seq}` : e.type))).toEqual(['m4', 'm5']);
    sub.unsubscribe();
  });
});

describe('inbox', () => {
  it('rooms.list pages by newest activity with exact unread counts that clear on markRead', async ({ t }) => {
    const owner = await t.client('inbox-owner');
    const others = await Promise.all(range(1, 5).map((n) => t.client(`peer${n}`)));
    const rooms = [];
    for (const [i, peer] of others.entries()) {
      const room = await peer.rooms.open.mutate({ otherUserId: 'inbox-owner' });
      await owner.rooms.accept.mutate({ roomId: room.id });
      await sendMany(peer, room.id, 1, i + 1);
      rooms.push(room);
    }
    await owner.messages.send.mutate({ roomId: rooms[0]!.id, content: 'mine, not unread' });
    const seen = [];
    let cursor: string | undefined;
    do {
      const page = await owner.rooms.list.query({ limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen.map((r) => r.id)).toEqual([rooms[0]!.id, rooms[4]!.id, rooms[3]!.id, rooms[2]!.id, rooms[1]!.id]);
    expect(seen.map((r) => r.unread)).toEqual([1, 5, 4, 3, 2]);
    expect(seen[0]).toMatchObject({ last_seq: 2, last_message: { content: 'mine, not unread' }, other: { user: 'peer1' } });
    await owner.messages.markRead.mutate({ roomId: rooms[4]!.id, seq: 3 });
    const after = await owner.rooms.list.query({ limit: 2 });
    expect(after.items[1]).toMatchObject({ id: rooms[4]!.id, unread: 2, read_seq: 3 });
    const peerView = await others[4]!.rooms.list.query();
    expect(peerView.items[0]).toMatchObject({ id: rooms[4]!.id, unread: 0, other_read_seq: 3, other: { user: 'inbox-owner' } });
    expect(await rejection(owner.rooms.list.query({ cursor: 'garbage' }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
  });

  it('rooms.list answers a cursor it did not hand out with 400 INVALID_INPUT, over HTTP and WebSocket, whatever the values inside', async ({ t }) => {
    const owner = await t.client('cursor-owner');
    for (const other of ['cursor-peer1', 'cursor-peer2']) await owner.rooms.open.mutate({ otherUserId: other });
    const first = await owner.rooms.list.query({ limit: 1 });
    const [us, id] = Buffer.from(first.nextCursor!, 'base64url').toString().split('|') as [string, string];
    const cursor = (text: string) => Buffer.from(text).toString('base64url');
    const yearsAhead = (years: number) => String((Date.now() + years * 365 * 24 * 3600 * 1000) * 1000);
    const crafted = {
      'the largest bigint': cursor(`9223372036854775807|${id}`),
      'twenty digits': cursor(`99999999999999999999|${id}`),
      'an activity a thousand years ahead': cursor(`${yearsAhead(1000)}|${id}`),
      'an activity a year ahead': cursor(`${yearsAhead(1)}|${id}`),
      'leading zeros': cursor(`000${us}|${id}`),
      'a uuid of dashes': cursor(`${us}|${'-'.repeat(36)}`),
      'a uuid with its dashes moved': cursor(`${us}|${id.replace(/-/g, '')}----`),
      'an upper-case uuid': cursor(`${us}|${id.toUpperCase()}`),
      'a third part': cursor(`${us}|${id}|${id}`),
      'not base64url': `${first.nextCursor}!`,
    };
    const token = await t.token('cursor-owner');
    const socket = await openTrpcSocket(t.url, token);
    for (const [what, value] of Object.entries(crafted)) {
      const http = await trpcHttp(t.url, 'rooms.list', { cursor: value }, token, 'query');
      expect({ what, status: http.status, data: http.error?.data }).toMatchObject({
        what,
        status: 400,
        data: { code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT', details: { fields: { cursor: [expect.any(String)] } } },
      });
      const ws = await socket.call('query', 'rooms.list', { cursor: value });
      expect({ what, data: ws.error?.data }).toMatchObject({ what, data: { code: 'BAD_REQUEST', parleyCode: 'INVALID_INPUT' } });
    }
    socket.close();
    // The cursor handed out still pages on.
    expect((await owner.rooms.list.query({ limit: 1, cursor: first.nextCursor! })).items).toHaveLength(1);
  });

  it('rooms.onEvent: one stream for all rooms, new rooms included, and presence of users sharing a room', async ({ t }) => {
    const zoe = await t.client('zoe');
    const r1 = await zoe.rooms.open.mutate({ otherUserId: 'yan' });
    const events: InboxEvent[] = [];
    const sub = zoe.rooms.onEvent.subscribe(undefined, { onData: (e) => events.push(e) });
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'ready' }));
    const yan = await t.client('yan');
    const xia = await t.client('xia');
    await yan.messages.send.mutate({ roomId: r1.id, content: 'from yan' });
    const r2 = await xia.rooms.open.mutate({ otherUserId: 'zoe' });
    await xia.messages.send.mutate({ roomId: r2.id, content: 'from xia' });
    await vi.waitFor(() => {
      expect(events).toContainEqual({ type: 'room_created', room: expect.objectContaining({ id: r2.id, unread: 0, other: expect.objectContaining({ user: 'xia' }) }) });
      expect(events.filter((e) => e.type === 'message').map((e) => e.type === 'message' && e.message.content)).toEqual(['from yan', 'from xia']);
    });
    // yan comes online (a socket), then goes offline: zoe hears both; a stranger's socket is not news to her.
    const stranger = await t.client('stranger');
    const strangerSub = stranger.rooms.onEvent.subscribe(undefined, { onData: () => {} });
    const yanSub = yan.rooms.onEvent.subscribe(undefined, { onData: () => {} });
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'presence', user: 'yan', online: true, last_seen_at: null }));
    expect((await zoe.rooms.list.query()).items.find((r) => r.id === r1.id)!.other).toEqual({ user: 'yan', online: true, last_seen_at: null });
    yanSub.unsubscribe();
    await yan.close();
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'presence', user: 'yan', online: false, last_seen_at: expect.any(String) }), { timeout: 15_000 });
    expect((await zoe.rooms.list.query()).items.find((r) => r.id === r1.id)!.other).toMatchObject({ online: false, last_seen_at: expect.any(String) });
    expect(events.some((e) => e.type === 'presence' && e.user === 'stranger')).toBe(false);
    // A legacy ws/chat socket counts too.
    const legacy = await openLegacySocket(t.url, 'xia', 'zoe', await t.token('xia'));
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'presence', user: 'xia', online: true, last_seen_at: null }));
    legacy.close();
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'presence', user: 'xia', online: false, last_seen_at: expect.any(String) }));
    expect(legacy.frames.every((f) => f.action === 'new_message' || f.action === 'typing')).toBe(true);
    strangerSub.unsubscribe();
    sub.unsubscribe();
  });
});

describe('sending', () => {
  it('in one process a room’s message events are published in seq order, 1..n, under 1,000 concurrent sends', async ({ t, freshRoom }) => {
    const { room, aId, bId } = await freshRoom();
    const published: number[] = [];
    const unsubscribe = t.app.services.bus.subscribe(roomKey(room.id), (e) => e.type === 'message' && published.push(e.message.seq));
    const { messages } = t.app.services;
    await Promise.all(range(1, 1000).map((i) => messages.send({ roomId: room.id, sender: i % 2 ? aId : bId, content: `m${i}` })));
    unsubscribe();
    expect(published).toEqual(range(1, 1000));
  });

  it('a group-commit batch that fails is logged with its cause, then its sends are retried one by one: the good ones are stored, densely', async ({ t, freshRoom }) => {
    const { room, aId } = await freshRoom();
    const warn = vi.spyOn(t.app.fastify.log, 'warn');
    const { messages } = t.app.services;
    // A NUL gets past this domain call (contracts refuse it on every surface) and makes PostgreSQL
    // reject the whole batch it travels in, and then itself alone.
    const sends = range(1, 20).map((i) => messages.send({ roomId: room.id, sender: aId, content: i === 10 ? 'bad \u0000' : `ok ${i}` }));
    const results = await Promise.allSettled(sends);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
    expect(results[9]!.status).toBe('rejected');
    const rows = await t.sql<{ seq: string; content: string }>('select seq, content from messages where chat_room_id = $1 order by seq', [room.id]);
    expect(rows.map((r) => Number(r.seq))).toEqual(range(1, 19));
    expect(warn.mock.calls.some(([obj, msg]) => typeof msg === 'string' && msg.includes('batch failed') && (obj as { err?: unknown }).err instanceof Error)).toBe(true);
    warn.mockRestore();
  });
});
