import { INLINE_IMAGE_TYPES } from './content-check.ts';

/**
 * "Still pending", for statements that find uploads by id: tested as `(…) is true`, which the
 * pending uploads' partial index (on their age, for the sweep) cannot answer. Tested plainly, a
 * plan made while the table's statistics were behind a burst of uploads read every pending upload
 * through that index for each row it looked for (3.8 ms a call over 30,000 pending uploads, where
 * the key's index takes a few µs).
 */
export const isPending = (alias = '') => `(${alias}status = 'pending') is true`;

/** Marks an attachment (`a`) used by message `messageId`; images get a thumbnail job. */
const markUsed = (messageId: string) => `status = 'ready', message_id = ${messageId}, next_try_at = now(),
         thumb_state = case when a.content_type in (${[...INLINE_IMAGE_TYPES].map((t) => `'${t}'`).join(', ')}) then 'pending' else 'none' end`;

/**
 * The part of the send statement that marks its messages' attachments used (see
 * `storeMessagesSql` in messages/message-store.ts), so a send with attachments is one statement,
 * not a transaction. `stored` names the rows being inserted (`id`, `room_id`, `sender_id`,
 * `attachments`); only the uploader's own, of the message's room, still pending, are marked.
 * Returns the `message_id` of each attachment marked: a message with fewer than it names had one
 * taken meanwhile. The attachments are also named as an array of ids, which the planner looks up
 * in the index: joined to the messages alone, it read the whole table. Their state is tested by
 * {@link isPending}.
 */
export const attachStoredSql = (stored: string) => `
  update attachments a set ${markUsed('s.id')}
    from ${stored} s cross join lateral jsonb_array_elements(s.attachments) f
   where a.id = (f->>'id')::uuid and ${isPending('a.')} and a.chat_room_id = s.room_id and a.uploader_id = s.sender_id
     and a.id = any(array(select (g->>'id')::uuid from ${stored} t cross join lateral jsonb_array_elements(t.attachments) g))
  returning a.message_id`;

/**
 * The same for one message (`STORE_ONE_WITH_ATTACHMENTS_SQL` in messages/message-store.ts): `room`
 * names its room's row (`id`), none when the send is refused; `$2` is the message's id, `$3` its
 * sender, `$6` its attachments' ids. Returns one row per attachment marked. The ids go through a
 * subquery: as a plain array parameter, whose length a custom plan knows, PostgreSQL found every
 * custom plan cheaper than the generic one and planned the statement anew on each call (0.6 ms of
 * its CPU a send, against 0.3 ms).
 */
export const attachOneSql = (room: string) => `
  update attachments a set ${markUsed('$2::uuid')}
    from ${room}
   where a.id = any(array(select unnest($6::uuid[]))) and ${isPending('a.')} and a.chat_room_id = ${room}.id and a.uploader_id = $3
  returning a.id`;
