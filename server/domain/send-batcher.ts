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
  em: EntityManager;
  command: SendCommand;
  resolve(message: Message | null): void;
  reject(err: unknown): void;
}

// Many sends, over any number of rooms, in one statement: each room takes one seq range from its
// row and the messages go in as one multi-row insert. Sends left out of the result are answered
// one by one: a room whose senders include a stranger (or that does not exist) matches no row,
// and a retried clientId (already stored, or repeated in the batch) is left out of `batch` so that
// one retry does not fail the whole statement.
const BATCH_SQL = `
  with input as (
    select * from json_to_recordset(?::json)
      as b(id uuid, room_id uuid, sender_id text, content text, client_id text, ord int)),
  batch as (
    select i.* from input i
     where i.client_id is null
        or (not exists (select 1 from messages m
                         where m.chat_room_id = i.room_id and m.sender_id = i.sender_id and m.client_id = i.client_id)
            and i.ord = (select min(j.ord) from input j
                          where j.room_id = i.room_id and j.sender_id = i.sender_id and j.client_id = i.client_id))),
  counts as (select room_id, count(*) as n from batch group by room_id),
  rooms as (
    update chat_rooms r set last_seq = r.last_seq + counts.n, last_message_at = now()
      from counts
     where r.id = counts.room_id
       and not exists (select 1 from batch b where b.room_id = r.id and b.sender_id not in (r.participant1_id, r.participant2_id))
    returning r.id, r.last_seq, counts.n)
  insert into messages (id, chat_room_id, sender_id, content, seq, client_id)
  select b.id, b.room_id, b.sender_id, b.content,
         rooms.last_seq - rooms.n + row_number() over (partition by b.room_id order by b.ord), b.client_id
    from batch b join rooms on rooms.id = b.room_id
  returning ${MESSAGE_COLUMNS}`;

/**
 * Coalesces concurrent sends into few statements (group commit). A room is in at most one
 * statement at a time and its sends keep their arrival order, so seqs are handed out in that
 * order and each send resolves after every earlier send of its room. Alone, a send runs at once;
 * under load, one statement and one commit carry many messages instead of one each.
 */
export function createSendBatcher({ sendOne, maxBatch = 256, maxInflight = 2 }: { sendOne: SendOne; maxBatch?: number; maxInflight?: number }) {
  let queue: Pending[] = [];
  const busyRooms = new Set<string>();
  let inflight = 0;

  async function run(batch: Pending[]) {
    let left = batch;
    if (batch.length > 1) {
      const rows = batch.map((p, i) => ({
        id: randomUUID(),
        room_id: p.command.roomId,
        sender_id: p.command.sender,
        content: p.command.content,
        client_id: p.command.clientId ?? null,
        ord: i + 1,
      }));
      try {
        const stored = new Map((await batch[0]!.em.execute<MessageRow[]>(BATCH_SQL, [JSON.stringify(rows)])).map((r) => [r.id, r]));
        left = [];
        rows.forEach((row, i) => {
          const hit = stored.get(row.id);
          if (hit) batch[i]!.resolve(messageFromRow(hit));
          else left.push(batch[i]!);
        });
      } catch {
        // A clientId stored by a concurrent statement (or anything else) fails the whole
        // statement; nothing was stored, so every send is answered one by one.
      }
    }
    for (const pending of left) await sendOne(pending.em, pending.command).then(pending.resolve, pending.reject);
  }

  function pump() {
    while (inflight < maxInflight && queue.length) {
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      const taken = new Set<string>();
      const blocked = new Set<string>();
      for (const pending of queue) {
        const room = pending.command.roomId;
        // Once one send of a room waits, every later send of that room waits too: order is kept.
        if (busyRooms.has(room) || blocked.has(room) || batch.length >= maxBatch) {
          blocked.add(room);
          rest.push(pending);
        } else {
          taken.add(room);
          batch.push(pending);
        }
      }
      if (!batch.length) return;
      queue = rest;
      inflight++;
      for (const room of taken) busyRooms.add(room);
      void run(batch).finally(() => {
        inflight--;
        for (const room of taken) busyRooms.delete(room);
        pump();
      });
    }
  }

  return {
    /** Resolves with the stored message, or null for a missing room or a sender outside it. */
    send(em: EntityManager, command: SendCommand): Promise<Message | null> {
      return new Promise((resolve, reject) => {
        queue.push({ em, command, resolve, reject });
        // A send to a busy room cannot start a statement; skipping the scan keeps a hot room O(n).
        if (!busyRooms.has(command.roomId)) pump();
      });
    },
  };
}
