import type { EntityManager } from '@mikro-orm/postgresql';
import { randomUUID } from 'node:crypto';
import type { Message } from '../../contracts/index.ts';
import { MESSAGE_COLUMNS, messageFromRow, type MessageRow } from './message-mapper.ts';

export interface SendCommand {
  roomId: string;
  sender: string;
  content: string;
  clientId?: string | undefined;
}

/** Stores one message; resolves to null when the room does not exist or the sender is not in it. */
export type SendOne = (em: EntityManager, command: SendCommand) => Promise<Message | null>;

interface Pending {
  command: SendCommand;
  resolve(message: Message | null): void;
  reject(err: unknown): void;
}

// Many sends in one statement: one seq range taken from the room row, one multi-row insert.
// A room whose sender set includes a stranger matches no row, and nothing is inserted.
const BATCH_SQL = `
  with batch as (
    select * from json_to_recordset(?::json) as b(id uuid, sender_id text, content text, client_id text, ord int)),
  room as (
    update chat_rooms set last_seq = last_seq + ?, last_message_at = now()
     where id = ? and not exists (select 1 from batch where batch.sender_id not in (participant1_id, participant2_id))
    returning id, last_seq)
  insert into messages (id, chat_room_id, sender_id, content, seq, client_id)
  select batch.id, room.id, batch.sender_id, batch.content, room.last_seq - ? + batch.ord, batch.client_id from room, batch
  returning ${MESSAGE_COLUMNS}`;

/**
 * Coalesces concurrent sends to one room. A room has at most one statement in flight per
 * process; sends arriving meanwhile wait and then go together in one statement. Under no
 * contention a send runs alone at once; under contention the room row is locked once per
 * batch instead of once per message, which is where a hot room spends its time.
 */
export function createSendBatcher({ sendOne, maxBatch = 256 }: { sendOne: SendOne; maxBatch?: number }) {
  const rooms = new Map<string, Pending[]>();

  async function runBatch(em: EntityManager, roomId: string, batch: Pending[]) {
    if (batch.length > 1) {
      const rows = batch.map((p, i) => ({ id: randomUUID(), sender_id: p.command.sender, content: p.command.content, client_id: p.command.clientId ?? null, ord: i + 1 }));
      try {
        const stored = await em.execute<MessageRow[]>(BATCH_SQL, [JSON.stringify(rows), batch.length, roomId, batch.length]);
        if (stored.length === batch.length) {
          const byId = new Map(stored.map((row) => [row.id, messageFromRow(row)]));
          rows.forEach((row, i) => batch[i]!.resolve(byId.get(row.id)!));
          return;
        }
      } catch {
        // A repeated clientId (or anything else) fails the whole batch: fall through to one by one,
        // so each send gets its own answer.
      }
    }
    for (const pending of batch) {
      await sendOne(em, pending.command).then(pending.resolve, pending.reject);
    }
  }

  async function drain(em: EntityManager, roomId: string, queue: Pending[]) {
    try {
      while (queue.length) await runBatch(em, roomId, queue.splice(0, maxBatch));
    } finally {
      rooms.delete(roomId);
    }
  }

  return {
    /** Resolves in seq order per room: a batch resolves its sends in arrival order. */
    send(em: EntityManager, command: SendCommand): Promise<Message | null> {
      return new Promise((resolve, reject) => {
        const queue = rooms.get(command.roomId);
        if (queue) return void queue.push({ command, resolve, reject });
        const fresh: Pending[] = [{ command, resolve, reject }];
        rooms.set(command.roomId, fresh);
        void drain(em, command.roomId, fresh);
      });
    },
  };
}
