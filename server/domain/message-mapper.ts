import type { Message as MessageDto } from '../../contracts/index.ts';

/** A `messages` row as raw SQL returns it (bigint arrives as a string). */
export interface MessageRow {
  id: string;
  chat_room_id: string;
  sender_id: string;
  content: string;
  created_at: Date | string;
  seq: string | number;
}

export const MESSAGE_COLUMNS = 'id, chat_room_id, sender_id, content, created_at, seq';

export function messageFromRow(row: MessageRow): MessageDto {
  return {
    id: row.id,
    chat_room: row.chat_room_id,
    sender: row.sender_id,
    content: row.content,
    created_at: new Date(row.created_at).toISOString(),
    seq: Number(row.seq),
  };
}
