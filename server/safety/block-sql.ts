/**
 * The send statement's block check, for a `chat_rooms` row aliased `room`: neither participant has
 * blocked the other. Two primary-key probes of `user_blocks` inside the statement that already
 * locks the room row, so a block costs a send no round trip and holds on every instance the moment
 * it commits. A declined message request is closed the same way.
 */
export const roomOpenForSends = (room: string) =>
  `${room}.declined_at is null
   and not exists (select 1 from user_blocks b where b.blocker_id = ${room}.participant1_id and b.blocked_id = ${room}.participant2_id)
   and not exists (select 1 from user_blocks b where b.blocker_id = ${room}.participant2_id and b.blocked_id = ${room}.participant1_id)`;

/** Rows of `user_blocks` between `?` and `?`, either way round. */
export const BLOCK_BETWEEN_SQL = `select 1 from user_blocks where (blocker_id = ? and blocked_id = ?) or (blocker_id = ? and blocked_id = ?)`;
