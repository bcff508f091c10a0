/**
 * The raw-pg baselines, run inside a load worker: Parley's send statement (imported from the
 * server's message store) issued directly over a
 * pool as large as the server's, and a plain single-row INSERT (the floor for any persisted send),
 * both by name, prepared once per connection, as the server runs its hot statements.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { STORE_ONE_MESSAGE_SQL } from '../../server/messages/message-store.ts';

const INSERT_SQL = `insert into messages (id, chat_room_id, sender_id, content, seq, client_id) values ($1, $2, $3, $4, $5, null)`;

// Plain inserts take seqs far above anything the send statement will reach, so both can share rooms.
let plainSeq = 1_000_000_000 + process.pid * 1_000_000;

export function rawPgSender(pool: pg.Pool, mode: 'pg-send-sql' | 'pg-insert', roomId: string, user: string) {
  return async (content: string) => {
    if (mode === 'pg-send-sql') {
      // A lone send: the statement the server uses for one message without clientId.
      const { rowCount } = await pool.query({ name: 'raw_send', text: STORE_ONE_MESSAGE_SQL, values: [roomId, randomUUID(), user, content] });
      if (rowCount !== 1) throw new Error('send statement inserted nothing');
    } else {
      await pool.query({ name: 'raw_insert', text: INSERT_SQL, values: [randomUUID(), roomId, user, content, plainSeq++] });
    }
  };
}
