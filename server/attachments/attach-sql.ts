import { INLINE_IMAGE_TYPES } from './content-check.ts';

/**
 * "Still pending", for statements that find uploads by id: tested as `(…) is true`, which the
 * pending uploads' partial index (on their age, for the sweep) cannot answer. Tested plainly, a
 * plan made while the table's statistics were behind a burst of uploads read every pending upload
 * through that index for each row it looked for (3.8 ms a call over 30,000 pending uploads, where
 * the key's index takes a few µs).
 */
export const isPending = (alias = '') => `(${alias}status = 'pending') is true`;

/**
 * The part of the send statement that marks its messages' attachments used (see
 * `storeMessagesSql` in messages/message-store.ts), so a send with attachments is one statement,
 * not a transaction. `stored` names the rows being inserted (`id`, `room_id`, `sender_id`,
 * `attachments`); only the uploader's own, of the message's room, still pending, are marked, and
 * images get a thumbnail job. Returns the `message_id` of each attachment marked: a message with
 * fewer than it names had one taken meanwhile. The attachments are also named as an array of ids,
 * which the planner looks up in the index: joined to the messages alone, it read the whole table.
 * Their state is tested by {@link isPending}.
 */
export const attachStoredSql = (stored: string) => `
  update attachments a set status = 'ready', message_id = s.id, next_try_at = now(),
         thumb_state = case when a.content_type in (${[...INLINE_IMAGE_TYPES].map((t) => `'${t}'`).join(', ')}) then 'pending' else 'none' end
    from ${stored} s cross join lateral jsonb_array_elements(s.attachments) f
   where a.id = (f->>'id')::uuid and ${isPending('a.')} and a.chat_room_id = s.room_id and a.uploader_id = s.sender_id
     and a.id = any(array(select (g->>'id')::uuid from ${stored} t cross join lateral jsonb_array_elements(t.attachments) g))
  returning a.message_id`;
