import type { EntityManager } from '@mikro-orm/postgresql';
import { UniqueConstraintViolationException } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import { ParleyError, type Message, type MessagePage } from '../../contracts/index.ts';
import { MESSAGE_COLUMNS, messageFromRow, type MessageRow } from './message-mapper.ts';
import type { RoomBus } from './room-bus.ts';
import { createSendBatcher, type SendCommand } from './send-batcher.ts';

export type { SendCommand };

export interface MessageService {
  /** Stores the message with the room's next seq and publishes it; a repeated clientId returns the first message. */
  send(em: EntityManager, command: SendCommand): Promise<Message>;
  /** Messages with `after < seq <= upTo`, oldest first. Callers check participation first. */
  readAfter(em: EntityManager, roomId: string, after: number, limit: number, upTo?: number): Promise<Message[]>;
  page(em: EntityManager, roomId: string, cursor: number, limit: number): Promise<MessagePage>;
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
  // Plain rows, not entities: history and replays read many messages and never modify them.
  async function readAfter(em: EntityManager, roomId: string, after: number, limit: number, upTo?: number) {
    const rows = await em.execute<MessageRow[]>(
      `select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and seq > ? and seq <= ? order by seq limit ?`,
      [roomId, after, upTo ?? Number.MAX_SAFE_INTEGER, limit],
    );
    return rows.map(messageFromRow);
  }

  async function sendOne(em: EntityManager, { roomId, sender, content, clientId }: SendCommand): Promise<Message | null> {
    try {
      const [row] = await em.execute<MessageRow[]>(SEND_SQL, [roomId, sender, sender, randomUUID(), sender, content, clientId ?? null]);
      return row ? messageFromRow(row) : null;
    } catch (err) {
      if (!(err instanceof UniqueConstraintViolationException) || !clientId) throw err;
      const [first] = await em.execute<MessageRow[]>(
        `select ${MESSAGE_COLUMNS} from messages where chat_room_id = ? and sender_id = ? and client_id = ?`,
        [roomId, sender, clientId],
      );
      if (!first) throw err;
      return messageFromRow(first);
    }
  }
  const batcher = createSendBatcher({ sendOne });

  return {
    async send(em, command) {
      const { roomId, content } = command;
      if (content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [`Ensure this field has no more than ${maxChars} characters.`] },
        });
      }
      const message = await batcher.send(em, command);
      if (!message) throw new ParleyError('ROOM_NOT_FOUND', 'Not found.');
      // The batcher resolves a room's sends in seq order, so events are published in order too.
      bus.publish(roomId, { type: 'message', message });
      return message;
    },

    readAfter,

    async page(em, roomId, cursor, limit) {
      const rows = await readAfter(em, roomId, cursor, limit + 1);
      const items = rows.slice(0, limit);
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.seq : null };
    },
  };
}
