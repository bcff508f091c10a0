import { expect } from 'vitest';
import { RENAME_IN_CHANGES_SQL, RENAME_IN_ROOMS_SQL } from '../../server/admin/moderation.ts';
import { STORE_MESSAGES_SQL, STORE_MESSAGES_WITH_ATTACHMENTS_SQL, STORE_ONE_WITH_ATTACHMENTS_SQL, READ_AFTER_MANY_SQL, READ_PAGES_SQL, catchUpRanges, storeMessagesParam } from '../../server/messages/message-store.ts';
import { decisionSql } from '../../server/presence/presence.service.ts';
import { jobPassSql } from '../../server/push/message-jobs.ts';
import { pushJobsFromStored } from '../../server/push/push.service.ts';
import { ROOM_PAIRS_SQL, ROOM_POSITIONS_SQL } from '../../server/rooms/rooms.service.ts';
import { RECORD_DELIVERED_MANY_SQL } from '../../server/messages/room-changes.ts';
import { BLOCK_PAIRS_SQL, PRIVACY_SQL } from '../../server/safety/block-view.ts';
import { WATCHED_LAST_SEQS_SQL } from '../../server/scale-out.ts';
import { webhookJobsFromStored } from '../../server/webhooks/webhooks.service.ts';
import { withClient } from '../support/template-database.ts';
import { appTest } from '../support/test-app.ts';

const it = appTest(import.meta.filename);

const ROOMS = 10_000;
/** Tables that grow with the users and rooms: none may be read whole for a batch of a few keys. */
const GROWING = new Set(['chat_rooms', 'users', 'messages', 'room_change_counters', 'message_job_cursors', 'presence_users', 'user_blocks', 'attachments', 'read_markers', 'room_mutes', 'push_subscriptions', 'room_changes', 'delivered_markers']);

/** A server of some size: rooms with messages, counters and cursors, users online on two instances, blocks, muted rooms, devices, pending uploads. */
const SEED = `
  insert into users (id) select 'u' || i || s from generate_series(0, ${ROOMS - 1}) i, unnest(array['a', 'b']) s;
  insert into chat_rooms (id, participant1_id, participant2_id, accepted_at, last_seq, last_message_at)
    select gen_random_uuid(), 'u' || i || 'a', 'u' || i || 'b', now(), 2, now() from generate_series(0, ${ROOMS - 1}) i;
  insert into messages (id, chat_room_id, sender_id, content, seq) select gen_random_uuid(), r.id, r.participant1_id, 'hello', g from chat_rooms r, generate_series(1, 2) g;
  insert into room_change_counters select id, 1, 1 from chat_rooms;
  insert into room_changes (chat_room_id, change_seq, at_seq, event) select id, 1, 1, jsonb_build_object('type', 'read', 'user', participant2_id, 'seq', 1, 'change_seq', 1) from chat_rooms;
  insert into message_job_cursors (chat_room_id, seq) select id, 0 from chat_rooms;
  insert into read_markers (chat_room_id, user_id, seq) select id, participant2_id, 1 from chat_rooms;
  insert into delivered_markers (chat_room_id, user_id, seq) select id, participant2_id, 1 from chat_rooms;
  insert into room_mutes (chat_room_id, user_id) select id, participant2_id from chat_rooms limit 1000;
  insert into push_subscriptions (user_id, endpoint, p256dh, auth) select id, 'https://push.example/' || id, 'k', 'a' from users;
  insert into presence_instances (id) values ('00000000-0000-0000-0000-0000000000aa'), ('00000000-0000-0000-0000-0000000000bb');
  insert into presence_users (instance_id, user_id) select case when id like '%a' then '00000000-0000-0000-0000-0000000000aa'::uuid else '00000000-0000-0000-0000-0000000000bb'::uuid end, id from users;
  insert into user_blocks (blocker_id, blocked_id) select 'u' || i || 'a', 'u' || ((i + 1) % ${ROOMS}) || 'b' from generate_series(0, ${ROOMS - 1}) i;
  update users set show_presence = false where id like 'u1%a';
  insert into attachments (id, chat_room_id, uploader_id, name, content_type, size, status) select gen_random_uuid(), id, participant1_id, 'f.txt', 'text/plain', 10, 'pending' from chat_rooms;
  analyze;`;

/** The statement with pg's `$n` for the `?` placeholders the services write. */
const numbered = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; Plans?: PlanNode[] };
const scanned = (node: PlanNode): string[] => [
  ...(node['Node Type'] === 'Seq Scan' && node['Relation Name'] && GROWING.has(node['Relation Name']) ? [node['Relation Name']] : []),
  ...(node.Plans ?? []).flatMap(scanned),
];

it('the batched reads and writes of reconnects, sends, history pages, delivery receipts, presence changes, erasures and the fan-out sweep find their rows by key on a server with 10,000 rooms', async ({ t }) => {
  await withClient(t.databaseUrl, async (c) => {
    await c.query(SEED);
    const { rows } = await c.query<{ id: string; a: string; b: string; attachment: string }>(
      'select r.id, r.participant1_id as a, r.participant2_id as b, (select id from attachments where chat_room_id = r.id) as attachment from chat_rooms r order by r.id limit 3',
    );
    const rooms = JSON.stringify(rows.map((r) => r.id));
    const users = JSON.stringify(rows.flatMap((r) => [r.a, r.b]));
    const me = '00000000-0000-0000-0000-0000000000aa';
    const transitions = JSON.stringify(rows.map((r, n) => ({ n, user_id: r.a, kind: ['arrive', 'leave', 'reap'][n] })));
    const sends = storeMessagesParam(rows.map((r) => ({ roomId: r.id, sender: r.a, content: 'x' }))).json;
    const withAttachments = storeMessagesParam(rows.map((r) => ({ roomId: r.id, sender: r.a, content: 'x', attachments: [{ id: r.attachment, name: 'f.txt', contentType: 'text/plain', size: 10 }] }))).json;
    const pages = JSON.stringify(rows.map((r, k) => ({ k, room: r.id, lo: 0, hi: 100, lim: 50, back: false })));
    const makers = [...pushJobsFromStored({ enabled: true, coalesceMs: 2_000 }), ...webhookJobsFromStored({ url: 'http://127.0.0.1:1/hook', secret: 's'.repeat(32), timeoutMs: 10_000 })];

    const statements: Array<[string, string, unknown[]]> = [
      ['room participants', ROOM_PAIRS_SQL, [rooms]],
      ['room positions', ROOM_POSITIONS_SQL, [rooms]],
      ['blocks of users', BLOCK_PAIRS_SQL, [users]],
      ['privacy of users', PRIVACY_SQL, [users]],
      ['presence decisions', decisionSql(15_000), [transitions, me, me, me]],
      ['push and webhook jobs', jobPassSql(makers), [rooms, rooms]],
      ['catch-up reads of messages (replays, webhook jobs)', READ_AFTER_MANY_SQL, [catchUpRanges(rows.map((r) => ({ roomId: r.id, after: 0, upTo: 2, limit: 2 })))]],
      ['sends', STORE_MESSAGES_SQL, [sends]],
      ['sends with attachments', STORE_MESSAGES_WITH_ATTACHMENTS_SQL, [withAttachments]],
      ['a lone send with attachments', STORE_ONE_WITH_ATTACHMENTS_SQL, [rows[0]!.id, me, rows[0]!.a, '', JSON.stringify([{ id: rows[0]!.attachment, name: 'f.txt', contentType: 'text/plain', size: 10 }]), [rows[0]!.attachment]]],
      ['history pages', READ_PAGES_SQL, [pages]],
      ['delivered markers of many rooms', RECORD_DELIVERED_MANY_SQL, [JSON.stringify(rows.map((r) => ({ room: r.id, user: r.b, seq: 2 })))]],
      ['an erasure renaming the user in their rooms', RENAME_IN_ROOMS_SQL, ['u1a', 'erased-1', 'u1a', 'erased-1', 'u1a', rooms]],
      ['an erasure renaming the user in their rooms’ changes', RENAME_IN_CHANGES_SQL, ['u1a', 'erased-1', rooms, 'u1a']],
      ['the sweep of watched rooms', WATCHED_LAST_SEQS_SQL, [JSON.stringify(Object.fromEntries(rows.map((r) => [r.id, 1])))]],
    ];
    const wholeTables: Record<string, string[]> = {};
    for (const [name, sql, params] of statements) {
      const { rows: plan } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>(`explain (format json) ${numbered(sql)}`, params);
      wholeTables[name] = scanned(plan[0]!['QUERY PLAN'][0]!.Plan);
    }
    expect(wholeTables).toEqual(Object.fromEntries(statements.map(([name]) => [name, []])));
  });
});
