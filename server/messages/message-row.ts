import type { Message } from '../../contracts/index.ts';

// A `messages` row's columns as raw SQL reads them and their mapping to the wire (the rest of the
// rows' ownership is message-store.ts).

/** A `messages` row as raw SQL returns it: bigint arrives as a string, timestamps as epoch milliseconds (see {@link epochMs}). */
export interface MessageRow {
  id: string;
  chat_room_id: string;
  sender_id: string;
  content: string;
  created_at: string | number;
  seq: string | number;
  edited_at?: string | number | null;
  deleted_at?: string | number | null;
  attachments?: StoredAttachment[] | null;
}

/** A message's file as `messages.attachments` keeps it; URLs are signed when it is read (server/attachments/). */
export interface StoredAttachment {
  id: string;
  name: string;
  contentType: string;
  size: number;
  width?: number;
  height?: number;
  /** Whether a thumbnail was made. */
  thumb?: boolean;
}

/**
 * A timestamp leaves PostgreSQL as whole epoch milliseconds (truncated, like the wire's ISO
 * string): `to_char` per timestamp took more of PostgreSQL's time than finding and sending the
 * rows (a 100-message page: 2,400 against 5,200 pages/s with pgbench), and letting the driver
 * parse timestamp text into a Date, only to format it again, dominated Node's share of a read.
 */
const epochMs = (column: string) => `floor(extract(epoch from ${column}) * 1000)::bigint`;
export const MESSAGE_COLUMNS = `id, chat_room_id, sender_id, content, ${epochMs('created_at')} as created_at, seq, ${epochMs('edited_at')} as edited_at, ${epochMs('deleted_at')} as deleted_at, attachments`;

const iso = (ms: string | number) => new Date(Number(ms)).toISOString();

export function messageFromRow(row: MessageRow): Message {
  return {
    id: row.id,
    chat_room: row.chat_room_id,
    sender: row.sender_id,
    content: row.content,
    created_at: iso(row.created_at),
    seq: Number(row.seq),
    // Absent rather than null: a message never edited or deleted keeps the original shape.
    ...(row.edited_at != null && { edited_at: iso(row.edited_at) }),
    ...(row.deleted_at != null && { deleted_at: iso(row.deleted_at) }),
    // Unsigned: `url` is filled in by whoever hands the message to a reader.
    ...(row.attachments != null && { attachments: row.attachments.map((a) => ({ ...a, url: '' })) }),
  };
}

