import { ParleyError, type RoomFilter, type RoomPage, type RoomSummary } from '../../contracts/index.ts';
import { MESSAGE_COLUMNS, messageFromRow, type MessageRow, type Sql } from '../messages/message-store.ts';
import { prepared, runPrepared, type Prepared } from '../infra/db/prepared.ts';

interface InboxRow {
  id: string;
  participant1_id: string;
  participant2_id: string;
  name: string | null;
  last_seq: string;
  activity_us: string;
  read_seq: string;
  other_read_seq: string;
  other_delivered_seq: string;
  other_last_seen_at: Date | string | null;
  unread: string;
  last_message: MessageRow | null;
  accepted: boolean;
  declined: boolean;
  archived: boolean;
}

/** What the caller may see of the other participant (see safety/block-view.ts `Visibility`). */
export interface PartnerVisibility {
  presenceOf(other: string): boolean;
  receiptsOf(other: string): boolean;
}

const SEE_ALL: PartnerVisibility = { presenceOf: () => true, receiptsOf: () => true };

const archivedBy = (n: 1 | 2, row = '') => `(${row}archived_seq${n} is not null and ${row}last_seq <= ${row}archived_seq${n})`;
/**
 * Each filter as a condition on each participant column's branch: participant1 opened the room,
 * so for them it is never a request; for participant2 it is one until accepted. Fixed SQL, no input.
 */
const FILTERS: Record<RoomFilter, { participant1_id: string; participant2_id: string }> = {
  inbox: { participant1_id: `not ${archivedBy(1)}`, participant2_id: `accepted_at is not null and not ${archivedBy(2)}` },
  requests: { participant1_id: 'false', participant2_id: 'accepted_at is null and declined_at is null' },
  archived: { participant1_id: archivedBy(1), participant2_id: `accepted_at is not null and ${archivedBy(2)}` },
  all: { participant1_id: 'true', participant2_id: 'true' },
};

// Activity is compared in whole microseconds: a JavaScript Date would round PostgreSQL's
// timestamps to milliseconds, and rooms active in the same millisecond would be skipped or repeated.
const encodeCursor = (activityUs: string, id: string) => Buffer.from(`${activityUs}|${id}`).toString('base64url');

// `<activity>|<room id>` as encodeCursor writes them; the activity is checked against the clock
// too, since digits past PostgreSQL's bigint and timestamp ranges would fail the statement.
const CURSOR = /^(0|[1-9]\d*)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
/** A room's activity is in the past; the day allows for the database's clock running ahead of ours. */
const CLOCK_SLACK_MS = 24 * 3600 * 1000;

function decodeCursor(cursor: string): [string, string] {
  const [, us, id] = CURSOR.exec(Buffer.from(cursor, 'base64url').toString()) ?? [];
  if (!us || !id || encodeCursor(us, id) !== cursor || Number(us) > (Date.now() + CLOCK_SLACK_MS) * 1000) {
    throw new ParleyError('INVALID_INPUT', 'cursor is not one rooms.list returned.', { fields: { cursor: ['must be a nextCursor from rooms.list'] } });
  }
  return [us, id];
}

/**
 * The page statement of each filter, first page or a later one, by name: for each participant
 * column the user, the cursor's activity and id (later pages) and the limit; then the limit and
 * the user four times. A first page and a later one are separate statements: with one for both
 * (`cursor is null or ...`), the plan PostgreSQL keeps for a statement by name could not start
 * its index scan at the cursor, and every later page would read from the newest room.
 */
function inboxStatement(filter: RoomFilter, later: boolean): Prepared {
  // The page of rooms is chosen first, by each participant column's activity index; only its
  // rows then get their last message, read markers and unread count.
  const branch = (column: 'participant1_id' | 'participant2_id') => `(select id, coalesce(last_message_at, created_at) as activity from chat_rooms
      where ${column} = ?::text and ${FILTERS[filter][column]}${later ? ` and (coalesce(last_message_at, created_at), id) < (timestamptz 'epoch' + ?::bigint * interval '1 microsecond', ?::uuid)` : ''}
      order by coalesce(last_message_at, created_at) desc, id desc limit ?::int)`;
  return prepared(`with page as (
       select * from (${branch('participant1_id')} union all ${branch('participant2_id')}) both_sides
        order by activity desc, id desc limit ?::int)
     select r.id, r.participant1_id, r.participant2_id, r.name, r.last_seq,
            (extract(epoch from p.activity) * 1000000)::bigint::text as activity_us,
            coalesce(mine.seq, 0) as read_seq, coalesce(theirs.seq, 0) as other_read_seq,
            coalesce(delivered.seq, 0) as other_delivered_seq,
            u.last_seen_at as other_last_seen_at,
            r.accepted_at is not null as accepted, r.declined_at is not null as declined,
            case when r.participant1_id = ?::text then ${archivedBy(1, 'r.')}
                 else ${archivedBy(2, 'r.')} end as archived,
            (select count(*) from messages m
              where m.chat_room_id = r.id and m.seq > coalesce(mine.seq, 0) and m.sender_id <> ?::text and m.deleted_at is null) as unread,
            (select to_jsonb(lm) from (select ${MESSAGE_COLUMNS} from messages
                                        where chat_room_id = r.id and seq = r.last_seq) lm) as last_message
       from page p
       join chat_rooms r on r.id = p.id
       join users u on u.id = case when r.participant1_id = ?::text then r.participant2_id else r.participant1_id end
       left join read_markers mine on mine.chat_room_id = r.id and mine.user_id = ?::text
       left join read_markers theirs on theirs.chat_room_id = r.id and theirs.user_id = u.id
       left join delivered_markers delivered on delivered.chat_room_id = r.id and delivered.user_id = u.id
      order by p.activity desc, p.id desc`);
}
const INBOX_STATEMENTS = Object.fromEntries(
  (Object.keys(FILTERS) as RoomFilter[]).map((filter) => [filter, { first: inboxStatement(filter, false), later: inboxStatement(filter, true) }]),
) as Record<RoomFilter, { first: Prepared; later: Prepared }>;

/**
 * One keyset page of the user's rooms, newest activity first, in one statement: each with its
 * newest message, the caller's exact unread count (the other participant's undeleted messages
 * after the caller's marker), both read markers and the other participant's delivered marker.
 * `online` answers presence from memory; `visible` hides what the caller may not see of the
 * partner (blocks, unanswered requests, privacy settings).
 */
export async function listInbox(
  sql: Sql,
  userId: string,
  page: { cursor?: string | undefined; limit: number },
  online: (user: string) => boolean,
  visible: PartnerVisibility = SEE_ALL,
  filter: RoomFilter = 'inbox',
): Promise<RoomPage> {
  const after = page.cursor === undefined ? null : decodeCursor(page.cursor);
  const keyset = after ? [userId, after[0], after[1], page.limit + 1] : [userId, page.limit + 1];
  const rows = await runPrepared<InboxRow>(sql, INBOX_STATEMENTS[filter][after ? 'later' : 'first'], [...keyset, ...keyset, page.limit + 1, userId, userId, userId, userId]);
  const items = rows.slice(0, page.limit).map((r) => summaryOf(r, userId, online, visible));
  const last = rows.length > page.limit ? rows[page.limit - 1]! : undefined;
  return { items, nextCursor: last ? encodeCursor(last.activity_us, last.id) : null };
}

function summaryOf(r: InboxRow, userId: string, online: (user: string) => boolean, visible: PartnerVisibility): RoomSummary {
  const opener = r.participant1_id === userId;
  const other = opener ? r.participant2_id : r.participant1_id;
  const presence = visible.presenceOf(other);
  return {
    id: r.id,
    participant1: r.participant1_id,
    participant2: r.participant2_id,
    name: r.name,
    last_seq: Number(r.last_seq),
    last_message: r.last_message && messageFromRow(r.last_message),
    unread: Number(r.unread),
    read_seq: Number(r.read_seq),
    other_read_seq: visible.receiptsOf(other) ? Number(r.other_read_seq) : 0,
    other_delivered_seq: visible.receiptsOf(other) ? Number(r.other_delivered_seq) : 0,
    other: {
      user: other,
      online: presence && online(other),
      last_seen_at: !presence || r.other_last_seen_at === null ? null : new Date(r.other_last_seen_at).toISOString(),
    },
    // The opener of a declined request sees it as unanswered: a decline is not announced, as a block is not.
    request: r.accepted ? null : opener ? 'sent' : r.declined ? 'declined' : 'received',
    archived: r.archived,
  };
}
