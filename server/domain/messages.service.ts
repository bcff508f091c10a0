import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { ParleyError, type Message, type MessagePage } from '../../contracts/index.ts';
import { Message as MessageEntity } from '../db/entities/message.entity.ts';
import { MESSAGE_COLUMNS, messageFromEntity, messageFromRow, type MessageRow } from './message-mapper.ts';
import type { RoomBus } from './room-bus.ts';

export interface SendCommand {
  roomId: string;
  sender: string;
  content: string;
  clientId?: string | undefined;
}

export interface MessageService {
  /** Stores the message with the room's next seq and publishes it; a repeated clientId returns the first message. */
  send(em: EntityManager, command: SendCommand): Promise<Message>;
  /** Messages with `after < seq <= upTo`, oldest first. Callers check participation first. */
  readAfter(em: EntityManager, roomId: string, after: number, limit: number, upTo?: number): Promise<Message[]>;
  page(em: EntityManager, roomId: string, cursor: number, limit: number): Promise<MessagePage>;
  /** Every message of the room in seq order, read in bounded batches so memory stays flat. */
  all(em: EntityManager, roomId: string, batchSize?: number): AsyncGenerator<Message>;
}

// One statement takes the next seq and inserts: the room row stays locked until commit, so seqs
// of a room commit in order and are dense; a non-participant matches no room row and inserts nothing.
const SEND_SQL = `
  with room as (
    update chat_rooms set last_seq = last_seq + 1, last_message_at = now()
     where id = ? and (participant1_id = ? or participant2_id = ?)
    returning id, last_seq)
  insert into messages (id, chat_room_id, sender_id, content, seq, client_id)
  select ?, room.id, ?, ?, room.last_seq, ? from room
  returning ${MESSAGE_COLUMNS}`;

export function createMessageService({ bus, maxChars }: { bus: RoomBus; maxChars: number }): MessageService {
  async function readAfter(em: EntityManager, roomId: string, after: number, limit: number, upTo?: number) {
    const seq = upTo === undefined ? { $gt: after } : { $gt: after, $lte: upTo };
    const rows = await em.find(MessageEntity, { chatRoom: roomId, seq }, { orderBy: { seq: 'asc' }, limit });
    return rows.map(messageFromEntity);
  }

  return {
    async send(em, { roomId, sender, content, clientId }) {
      if (content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [`Ensure this field has no more than ${maxChars} characters.`] },
        });
      }
      let rows: MessageRow[];
      try {
        rows = await em.execute<MessageRow[]>(SEND_SQL, [roomId, sender, sender, randomUUID(), sender, content, clientId ?? null]);
      } catch (err) {
        if (!(err instanceof UniqueConstraintViolationException) || !clientId) throw err;
        const [first] = await em.execute<MessageRow[]>(
          `select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and sender_id = ? and client_id = ?`,
          [roomId, sender, clientId],
        );
        if (!first) throw err;
        return messageFromRow(first);
      }
      const [row] = rows;
      if (!row) throw new ParleyError('ROOM_NOT_FOUND', 'Not found.');
      const message = messageFromRow(row);
      bus.publish(roomId, { type: 'message', message });
      return message;
    },

    readAfter,

    async page(em, roomId, cursor, limit) {
      const rows = await readAfter(em, roomId, cursor, limit + 1);
      const items = rows.slice(0, limit);
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.seq : null };
    },

    async *all(em, roomId, batchSize = 1000) {
      let after = 0;
      for (;;) {
        const rows = await em.execute<MessageRow[]>(
          `select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and seq > ? order by seq limit ?`,
          [roomId, after, batchSize],
        );
        for (const row of rows) yield messageFromRow(row);
        if (rows.length < batchSize) return;
        after = Number(rows.at(-1)!.seq);
      }
    },
  };
}
