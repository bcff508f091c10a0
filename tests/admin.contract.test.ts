import { createECDH, randomBytes } from 'node:crypto';
import webpush from 'web-push';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createChatClient, type ChatClient } from '../client-sdk/index.ts';
import type { ExportLine } from '../contracts/index.ts';
import { exportUser } from '../server/admin/user-export.ts';
import { signToken } from '../server/identity/sign-token.ts';
import type { Sql } from '../server/messages/message-store.ts';
import { openLegacySocket, upgradeStatus } from './support/legacy-socket.ts';
import { openTrpcSocket, trpcHttp } from './support/raw-trpc.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs, sendMany } from './support/room-pair.ts';
import { record } from './support/subscription.ts';
import { startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';

const ADMIN_TOKEN = 'static-admin-secret-0123456789abcdefghijkl';

let t: TestApp;
let admin: ChatClient;
beforeAll(async () => {
  // Push on, so an erased user's devices, mutes and pending notifications are there to erase.
  const vapid = webpush.generateVAPIDKeys();
  t = await startTestApp(import.meta.filename, {
    ADMIN_TOKEN,
    PUSH: 'on',
    VAPID_PUBLIC_KEY: vapid.publicKey,
    VAPID_PRIVATE_KEY: vapid.privateKey,
    VAPID_SUBJECT: 'mailto:admin-tests@example.com',
    PUSH_ALLOW_LOCAL_ENDPOINTS: 'true',
  });
  admin = client(await adminToken('mod-1'));
});
afterAll(async () => {
  await admin?.close();
  await t?.close();
});

const clients: ChatClient[] = [];
afterAll(() => Promise.allSettled(clients.map((c) => c.close())));
function client(token: string) {
  const c = createChatClient({ url: t.url, token });
  clients.push(c);
  return c;
}
const adminToken = (sub?: string) => signToken({ secret: TEST_SECRET, userId: sub, expiresIn: '1h', claims: { role: 'admin' } });
let pairs: ReturnType<typeof roomPairs> | undefined;
const freshRoom = () => (pairs ??= roomPairs(t, 'adm'))();

async function restList(userId: string, roomId: string) {
  const res = await fetch(`${t.url}/${roomId}/messages/`, { headers: { authorization: `Bearer ${await t.token(userId)}` } });
  return { status: res.status, body: (await res.json()) as unknown, challenge: res.headers.get('www-authenticate') };
}

const ADMIN_CALLS: Array<[string, 'query' | 'mutation', unknown]> = [
  ['admin.reports.list', 'query', {}],
  ['admin.reports.resolve', 'mutation', { reportId: '00000000-0000-4000-8000-000000000000', action: 'dismiss' }],
  ['admin.users.ban', 'mutation', { userId: 'x', reason: 'r' }],
  ['admin.users.unban', 'mutation', { userId: 'x' }],
  ['admin.users.erase', 'mutation', { userId: 'x' }],
  ['admin.messages.delete', 'mutation', { messageId: '00000000-0000-4000-8000-000000000000', hard: true }],
  ['admin.audit.list', 'query', {}],
];

describe('admin authority', () => {
  it('refuses a user token on every admin procedure and on the export route with FORBIDDEN, and no token with 401', async () => {
    const user = await t.token('adm-plain');
    for (const [path, kind, input] of ADMIN_CALLS) {
      expect(await trpcHttp(t.url, path, input, user, kind), path).toMatchObject({ status: 403, error: { data: { code: 'FORBIDDEN', parleyCode: 'FORBIDDEN' } } });
      expect(await trpcHttp(t.url, path, input, undefined, kind), path).toMatchObject({ status: 401, error: { data: { parleyCode: 'UNAUTHENTICATED' } } });
    }
    const exported = await fetch(`${t.url}/admin/users/x/export`, { headers: { authorization: `Bearer ${user}` } });
    expect(exported.status).toBe(403);
    expect(await exported.json()).toEqual({ detail: 'This requires an admin token.' });
    expect((await fetch(`${t.url}/admin/users/x/export`)).status).toBe(401);
    // Over the tRPC WebSocket too.
    const socket = await openTrpcSocket(t.url, user);
    expect((await socket.call('query', 'admin.audit.list', {})).error).toMatchObject({ data: { code: 'FORBIDDEN' } });
    socket.close();
  });

  it('takes the admin role claim or ADMIN_TOKEN; an admin token is a user token only when it has a sub', async () => {
    expect(await trpcHttp(t.url, 'admin.audit.list', {}, ADMIN_TOKEN, 'query')).toMatchObject({ status: 200 });
    expect(await trpcHttp(t.url, 'admin.audit.list', {}, await adminToken(), 'query')).toMatchObject({ status: 200 });
    expect(await trpcHttp(t.url, 'admin.audit.list', {}, ADMIN_TOKEN.slice(0, -1) + 'X', 'query')).toMatchObject({ status: 401, error: { data: { parleyCode: 'TOKEN_INVALID' } } });
    // Neither the static secret nor an admin token without sub speaks for a user.
    expect(await trpcHttp(t.url, 'rooms.list', {}, ADMIN_TOKEN, 'query')).toMatchObject({ status: 401, error: { data: { parleyCode: 'TOKEN_INVALID' } } });
    expect(await trpcHttp(t.url, 'rooms.list', {}, await adminToken(), 'query')).toMatchObject({ status: 401, error: { data: { parleyCode: 'TOKEN_INVALID', details: { claim: 'sub' } } } });
    expect(await trpcHttp(t.url, 'rooms.list', {}, await adminToken('adm-mod-user'), 'query')).toMatchObject({ status: 200 });
  });
});

describe('reports', () => {
  async function reported() {
    const { a, b, room, aId, bId } = await freshRoom();
    const [m1, m2] = await sendMany(b, room.id, 1, 2);
    const onMessage = await a.reports.create.mutate({ roomId: room.id, messageId: m1!.id, reason: 'spam', note: 'buy now' });
    return { a, b, room, aId, bId, m1: m1!, m2: m2!, report: onMessage };
  }

  it('lists reports oldest first, by status, in pages', async () => {
    const first = await reported();
    const second = await reported();
    const open = await admin.admin.reports.list.query({ status: 'open', limit: 200 });
    const ids = open.items.map((r) => r.id);
    expect(ids.indexOf(first.report.id)).toBeLessThan(ids.indexOf(second.report.id));
    expect(open.items.find((r) => r.id === first.report.id)).toMatchObject({
      reporter: first.aId,
      reported_user: first.bId,
      status: 'open',
      resolved_at: null,
      resolution_action: null,
      message: { content: 'm1' },
    });
    const all: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await admin.admin.reports.list.query({ limit: 1, ...(cursor && { cursor }) });
      all.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(all).toEqual(expect.arrayContaining([first.report.id, second.report.id]));
    expect(new Set(all).size).toBe(all.length);
  });

  it('dismiss closes the report and leaves everything else; a second resolve is REPORT_CLOSED', async () => {
    const { report, room, aId } = await reported();
    const dismissed = await admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'dismiss', note: 'fine' });
    expect(dismissed).toMatchObject({ status: 'dismissed', resolved_by: 'mod-1', resolution_action: 'dismiss', resolution_note: 'fine', resolved_at: expect.any(String) });
    expect((await restList(aId, room.id)).body).toHaveLength(2);
    expect(await rejection(admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'ban_user' }))).toMatchObject({ code: 'CONFLICT', parleyCode: 'REPORT_CLOSED' });
    const unknown = await trpcHttp(t.url, 'admin.reports.resolve', { reportId: '00000000-0000-4000-8000-000000000000', action: 'dismiss' }, ADMIN_TOKEN);
    expect(unknown).toMatchObject({ status: 404, error: { data: { parleyCode: 'NOT_FOUND' } } });
  });

  it('delete_message removes the reported message for good, from the report snapshot too', async () => {
    const { report, room, aId, m1 } = await reported();
    const resolved = await admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'delete_message' });
    expect(resolved).toMatchObject({ status: 'resolved', resolution_action: 'delete_message', message: { id: m1.id, content: '' } });
    const history = (await restList(aId, room.id)).body as Array<{ id: string; content: string }>;
    expect(history.map((m) => m.content)).toEqual(['', 'm2']);
    const [row] = await t.sql<{ n: number }>(`select count(*)::int as n from reports where message_snapshot->>'content' = 'm1' and id = $1`, [report.id]);
    expect(row!.n).toBe(0);
  });

  it('ban_user bans the reported user', async () => {
    const { report, room, bId } = await reported();
    await admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'ban_user', note: 'spammer' });
    expect(await restList(bId, room.id)).toMatchObject({ status: 401, body: { detail: 'This account is banned.' } });
    await admin.admin.users.unban.mutate({ userId: bId });
  });

  it('a conversation report cannot be resolved by deleting a message', async () => {
    const { a, room } = await freshRoom();
    const report = await a.reports.create.mutate({ roomId: room.id, reason: 'harassment' });
    expect(await rejection(admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'delete_message' }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
  });
});

describe('bans', () => {
  it('refuse the user on REST, tRPC and the ws upgrade, close their open sockets of both surfaces within 1 s with 4512, and unban restores', async () => {
    const { a, room, aId, bId } = await freshRoom();
    await sendMany(a, room.id, 1, 1);
    const trpcSocket = await openTrpcSocket(t.url, await t.token(aId));
    // The socket counts as the user's once a call has authenticated it.
    expect((await trpcSocket.call('query', 'rooms.list', {})).result).toBeDefined();
    const legacy = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    const sub = record(a, room.id);
    await sub.started;

    const started = performance.now();
    const ban = await admin.admin.users.ban.mutate({ userId: aId, reason: 'abuse' });
    expect(ban).toMatchObject({ user: aId, until: null, reason: 'abuse', banned_by: 'mod-1' });
    const [trpcClosed, legacyClosed] = await Promise.all([trpcSocket.closed, legacy.closed]);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(trpcClosed).toBe(4512);
    expect(legacyClosed.code).toBe(4512);

    expect(await restList(aId, room.id)).toEqual({ status: 401, body: { detail: 'This account is banned.' }, challenge: expect.stringContaining('Bearer') });
    const http = await trpcHttp(t.url, 'messages.send', { roomId: room.id, content: 'x' }, await t.token(aId));
    expect(http).toMatchObject({ status: 401, error: { data: { code: 'UNAUTHORIZED', parleyCode: 'BANNED' } } });
    expect(await upgradeStatus(t.url, `/ws/chat/${aId}/${bId}/?token=${await t.token(aId)}`)).toBe(401);
    // The other participant is untouched.
    expect((await restList(bId, room.id)).status).toBe(200);

    expect(await admin.admin.users.unban.mutate({ userId: aId })).toEqual({ user: aId, unbanned: true });
    expect(await admin.admin.users.unban.mutate({ userId: aId })).toEqual({ user: aId, unbanned: false });
    expect((await restList(aId, room.id)).status).toBe(200);
    expect(await upgradeStatus(t.url, `/ws/chat/${aId}/${bId}/?token=${await t.token(aId)}`)).toBe(101);
    sub.unsubscribe();
  });

  it('a ban with an end says until when, and stops refusing when it passes; one ending in the past is invalid', async () => {
    const { room, aId } = await freshRoom();
    const until = new Date(Date.now() + 1500).toISOString();
    await admin.admin.users.ban.mutate({ userId: aId, reason: 'cool off', until });
    const refused = await trpcHttp(t.url, 'rooms.list', {}, await t.token(aId), 'query');
    expect(refused).toMatchObject({ status: 401, error: { data: { parleyCode: 'BANNED', details: { until } } } });
    await vi.waitFor(async () => expect((await restList(aId, room.id)).status).toBe(200), { timeout: 5000, interval: 100 });
    expect(await rejection(admin.admin.users.ban.mutate({ userId: aId, reason: 'x', until: new Date(Date.now() - 1000).toISOString() }))).toMatchObject({ parleyCode: 'INVALID_INPUT' });
  });

  it('holds across a restart: a new instance refuses a ban it never heard of', async () => {
    const { room, aId } = await freshRoom();
    await t.sql(`insert into user_bans (user_id, reason, banned_by) values ($1, 'stored', 'mod')`, [aId]);
    const { startPeerApp } = await import('./support/peer-app.ts');
    const fresh = await startPeerApp(t);
    try {
      const res = await fetch(`${fresh.url}/${room.id}/messages/`, { headers: { authorization: `Bearer ${await t.token(aId)}` } });
      expect(res.status).toBe(401);
    } finally {
      await fresh.close();
      await t.sql('delete from user_bans where user_id = $1', [aId]);
    }
  });
});

describe('hard delete', () => {
  it('leaves a tombstone with its seq, removes the content from the change log, tells live subscribers, and resumes exactly', async () => {
    const { a, b, room } = await freshRoom();
    const [m1, m2, m3] = await sendMany(a, room.id, 1, 3);
    await a.messages.edit.mutate({ roomId: room.id, messageId: m2!.id, content: 'secret edit' });
    const live = record(b, room.id);
    await live.started;
    const tombstone = await admin.admin.messages.delete.mutate({ messageId: m2!.id, hard: true });
    expect(tombstone).toMatchObject({ id: m2!.id, seq: 2, content: '', deleted_at: expect.any(String) });
    await vi.waitFor(() => expect(live.events.some((e) => e.type === 'message_deleted' && e.message.id === m2!.id)).toBe(true));
    const [leak] = await t.sql<{ n: number }>(`select count(*)::int as n from room_changes where chat_room_id = $1 and (event::text like '%secret edit%' or event::text like '%"m2"%')`, [room.id]);
    expect(leak!.n).toBe(0);
    // Resume from the start: every message once, in order, the deleted one as its tombstone.
    const replay = record(b, room.id, '0');
    await replay.waitForMessages(3);
    await vi.waitFor(() => expect(replay.events.filter((e) => e.type === 'message_deleted')).toHaveLength(1));
    expect(replay.seqs()).toEqual([1, 2, 3]);
    expect(replay.events.flatMap((e) => (e.type === 'message' ? [e.message.content] : []))).toEqual(['m1', '', 'm3']);
    expect(JSON.stringify(replay.events)).not.toContain('secret edit');
    // A second delete finds the tombstone: no new change.
    await admin.admin.messages.delete.mutate({ messageId: m2!.id, hard: true });
    const [changes] = await t.sql<{ n: number }>(`select count(*)::int as n from room_changes where chat_room_id = $1 and event->>'type' = 'message_deleted'`, [room.id]);
    expect(changes!.n).toBe(1);
    expect(m1 && m3).toBeTruthy();
    live.unsubscribe();
    replay.unsubscribe();
  });

  it('requires hard: true, and an unknown message is MESSAGE_NOT_FOUND', async () => {
    const res = await trpcHttp(t.url, 'admin.messages.delete', { messageId: '00000000-0000-4000-8000-000000000000' }, ADMIN_TOKEN);
    expect(res).toMatchObject({ status: 400, error: { data: { parleyCode: 'INVALID_INPUT' } } });
    const missing = await trpcHttp(t.url, 'admin.messages.delete', { messageId: '00000000-0000-4000-8000-000000000000', hard: true }, ADMIN_TOKEN);
    expect(missing).toMatchObject({ status: 404, error: { data: { parleyCode: 'MESSAGE_NOT_FOUND' } } });
  });
});

describe('export', () => {
  const MESSAGES = 10_000;

  async function bulkRoom(prefix: string) {
    const { a, room, aId, bId } = await freshRoom();
    await t.sql(
      `with ins as (insert into messages (id, chat_room_id, sender_id, content, seq)
         select gen_random_uuid(), $1, case when s % 2 = 0 then $2 else $3 end, $4 || s, s from generate_series(1, $5::int) s returning 1)
       update chat_rooms set last_seq = $5 where id = $1`,
      [room.id, aId, bId, prefix, MESSAGES],
    );
    await a.messages.markRead.mutate({ roomId: room.id, seq: 10 });
    await a.reports.create.mutate({ roomId: room.id, reason: 'other' });
    return { room, aId, bId };
  }

  it('streams every room, message, marker, block and report of a user as NDJSON', async () => {
    const { room, aId, bId } = await bulkRoom('bulk');
    const res = await fetch(`${t.url}/admin/users/${aId}/export`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const lines = (await res.text())
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as ExportLine);
    const count = (type: string) => lines.filter((l) => l.type === type).length;
    expect(lines[0]).toMatchObject({ type: 'user', id: aId, ban: null });
    expect(lines[1]).toMatchObject({ type: 'room', id: room.id, last_seq: MESSAGES });
    expect(count('message')).toBe(MESSAGES);
    expect(lines.filter((l) => l.type === 'message').map((l) => (l as { seq: number }).seq)).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    expect(lines.find((l) => l.type === 'read_marker')).toEqual({ type: 'read_marker', chat_room: room.id, user: aId, seq: 10 });
    expect(lines.find((l) => l.type === 'report')).toMatchObject({ report: { reporter: aId, reported_user: bId } });
  });

  it('reads in pages as the consumer pulls: memory is bounded by the page size, not the history', async () => {
    const { aId } = await bulkRoom('paged');
    const real = t.app.services.orm.em.getConnection();
    const statements: number[] = [];
    const counting = {
      execute: async (...args: Parameters<Sql['execute']>) => {
        const rows = (await real.execute(...args)) as unknown[];
        statements.push(rows.length);
        return rows;
      },
    } as unknown as Sql;
    const lines = exportUser(counting, aId, 500);
    for (let i = 0; i < 10; i++) await lines.next();
    // The user, their ban, the room page and one page of messages: nothing more is read yet.
    expect(statements.length).toBe(4);
    let n = 10;
    while (!(await lines.next()).done) n++;
    expect(n).toBeGreaterThan(MESSAGES);
    expect(Math.max(...statements)).toBeLessThanOrEqual(500);
    // 10,000 messages in 20 full pages and an empty one.
    expect(statements.filter((rows) => rows === 500)).toHaveLength(MESSAGES / 500);
  });
});

describe('erase', () => {
  it('leaves no content of the user and no occurrence of their id in any table; others keep theirs; idempotent', async () => {
    const eId = `erase-me-${Date.now().toString(36)}`;
    const [fId, gId] = [`${eId}-f`.replace('erase-me', 'friend'), `${eId}-g`.replace('erase-me', 'other')];
    const e = await t.client(eId);
    const [f, g] = await Promise.all([t.client(fId), t.client(gId)]);
    const withF = await e.rooms.open.mutate({ otherUserId: fId, name: `chat of ${eId}` });
    const withG = await g.rooms.open.mutate({ otherUserId: eId });
    const mine = await e.messages.send.mutate({ roomId: withF.id, content: 'private words' });
    await e.messages.edit.mutate({ roomId: withF.id, messageId: mine.id, content: 'private edited' });
    const deletedBefore = await e.messages.send.mutate({ roomId: withG.id, content: 'gone already' });
    await e.messages.delete.mutate({ roomId: withG.id, messageId: deletedBefore.id });
    await e.messages.send.mutate({ roomId: withG.id, content: 'to g', clientId: 'c-1' });
    const fromF = await f.messages.send.mutate({ roomId: withF.id, content: 'reply from f' });
    await e.messages.markRead.mutate({ roomId: withF.id, seq: 2 });
    await f.messages.markRead.mutate({ roomId: withF.id, seq: 2 });
    await e.messages.markDelivered.mutate({ roomId: withF.id, seq: 2 });
    await e.rooms.mute.mutate({ roomId: withF.id });
    const device = createECDH('prime256v1');
    device.generateKeys();
    await e.push.subscribe.mutate({ endpoint: `http://127.0.0.1:9/push/${eId}`, keys: { p256dh: device.getPublicKey().toString('base64url'), auth: randomBytes(16).toString('base64url') } });
    await e.users.block.mutate({ userId: gId });
    await g.users.block.mutate({ userId: eId });
    await e.reports.create.mutate({ roomId: withF.id, messageId: fromF.id, reason: 'spam', note: 'f spams' });
    await f.reports.create.mutate({ roomId: withF.id, messageId: mine.id, reason: 'harassment' });
    await admin.admin.users.ban.mutate({ userId: eId, reason: 'before erasure', until: new Date(Date.now() + 3_600_000).toISOString() });
    await admin.admin.users.unban.mutate({ userId: eId });
    const socket = await openTrpcSocket(t.url, await t.token(eId));
    await socket.call('query', 'rooms.list', {});

    const erased = await admin.admin.users.erase.mutate({ userId: eId });
    expect(erased).toEqual({ pseudonym: expect.stringMatching(/^erased-/), messages: 3 });
    expect(await socket.closed).toBe(4502);

    const columns = await t.sql<{ table_name: string; column_name: string }>(
      `select table_name, column_name from information_schema.columns c
        where table_schema = 'public' and data_type in ('text', 'character varying', 'jsonb', 'json', 'character')
          and exists (select 1 from information_schema.tables t where t.table_schema = 'public' and t.table_name = c.table_name and t.table_type = 'BASE TABLE')`,
    );
    expect(columns.length).toBeGreaterThan(10);
    const found: string[] = [];
    for (const { table_name, column_name } of columns) {
      const [hit] = await t.sql<{ n: number }>(`select count(*)::int as n from "${table_name}" where strpos("${column_name}"::text, $1) > 0`, [eId]);
      if (hit!.n) found.push(`${table_name}.${column_name}: ${hit!.n}`);
    }
    expect(found).toEqual([]);
    for (const content of ['private words', 'private edited', 'gone already', 'to g']) {
      const hits = [];
      for (const { table_name, column_name } of columns) {
        const [hit] = await t.sql<{ n: number }>(`select count(*)::int as n from "${table_name}" where strpos("${column_name}"::text, $1) > 0`, [content]);
        if (hit!.n) hits.push(`${table_name}.${column_name}`);
      }
      expect(hits, content).toEqual([]);
    }

    // The others keep their messages and rooms, now with the pseudonym.
    const history = await f.messages.list.query({ roomId: withF.id });
    expect(history.items.map((m) => [m.sender, m.content])).toEqual([
      [erased.pseudonym, ''],
      [fId, 'reply from f'],
    ]);
    const fReport = (await admin.admin.reports.list.query({ limit: 200 })).items.find((r) => r.message_id === fromF.id);
    expect(fReport).toMatchObject({ reporter: erased.pseudonym, reported_user: fId, note: 'f spams', message: { content: 'reply from f' } });

    expect(await admin.admin.users.erase.mutate({ userId: eId })).toEqual({ pseudonym: null, messages: 0 });

    // The user's token now names a new, empty account: the old rooms are not theirs.
    expect((await e.rooms.list.query({})).items).toEqual([]);
    expect(await rejection(e.messages.list.query({ roomId: withF.id }))).toMatchObject({ parleyCode: 'ROOM_NOT_FOUND' });
    expect(g).toBeDefined();
  });
});

describe('audit', () => {
  it('records every admin action with who, what, target and when, newest first', async () => {
    const { a, room, bId } = await freshRoom();
    const [m] = await sendMany(a, room.id, 1, 1);
    const report = await a.reports.create.mutate({ roomId: room.id, messageId: m!.id, reason: 'spam' });
    const since = (await admin.admin.audit.list.query({ limit: 1 })).items[0]?.id ?? '0';
    await admin.admin.reports.resolve.mutate({ reportId: report.id, action: 'dismiss' });
    await admin.admin.users.ban.mutate({ userId: bId, reason: 'audit me' });
    await admin.admin.users.unban.mutate({ userId: bId });
    await admin.admin.messages.delete.mutate({ messageId: m!.id, hard: true });
    await (await fetch(`${t.url}/admin/users/${bId}/export`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    await admin.admin.users.erase.mutate({ userId: 'adm-nobody-at-all' });

    const entries = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await admin.admin.audit.list.query({ limit: 2, ...(cursor && { cursor }) });
      const newer = page.items.filter((e) => BigInt(e.id) > BigInt(since));
      entries.push(...newer);
      if (newer.length < page.items.length || !page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(entries.map((e) => [e.action, e.actor, e.target])).toEqual([
      ['users.erase', 'mod-1', 'nobody'],
      ['users.export', 'admin-token', bId],
      ['messages.delete', 'mod-1', m!.id],
      ['users.unban', 'mod-1', bId],
      ['users.ban', 'mod-1', bId],
      ['reports.resolve', 'mod-1', report.id],
    ]);
    expect(entries.find((e) => e.action === 'users.ban')).toMatchObject({ target_type: 'user', details: { reason: 'audit me', until: null }, at: expect.any(String) });
  });
});
