import pg from 'pg';

const withDb = (url: string, name: string) => {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
};

async function admin(adminUrl: string, sql: string) {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    return await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A fresh database per run, so results never depend on what an earlier run left behind. */
export async function createBenchDb(adminUrl: string, name = `parley_bench_${process.pid}`) {
  await admin(adminUrl, `drop database if exists ${name} with (force)`);
  await admin(adminUrl, `create database ${name}`);
  return {
    name,
    url: withDb(adminUrl, name),
    drop: () => admin(adminUrl, `drop database if exists ${name} with (force)`),
    async postgresVersion(): Promise<string> {
      const { rows } = await admin(adminUrl, 'select version() as v');
      return String(rows[0]?.v ?? 'unknown');
    },
  };
}

export interface Pair {
  roomId: string;
  a: string;
  b: string;
}

/** Creates `count` user pairs `<prefix><i>a`/`<prefix><i>b` and a room each, in two set-based statements. */
export async function seedPairs(pool: pg.Pool, prefix: string, count: number): Promise<Pair[]> {
  await pool.query(
    `insert into users (id) select $1 || i || s from generate_series(0, $2 - 1) i, unnest(array['a','b']) s on conflict do nothing`,
    [prefix, count],
  );
  // A build from before message requests (a baseline of live-ab) has no accepted_at.
  const { rows: requests } = await pool.query(`select 1 from information_schema.columns where table_name = 'chat_rooms' and column_name = 'accepted_at'`);
  const { rows } = await pool.query<{ id: string; i: number }>(
    // Answered conversations, as the pairs of a running chat are (a request would hide presence and receipts).
    `insert into chat_rooms (id, participant1_id, participant2_id${requests.length ? ', accepted_at' : ''})
     select gen_random_uuid(), $1 || i || 'a', $1 || i || 'b'${requests.length ? ', now()' : ''} from generate_series(0, $2 - 1) i
     on conflict do nothing
     returning id, substring(participant1_id from char_length($1) + 1 for char_length(participant1_id) - char_length($1) - 1)::int as i`,
    [prefix, count],
  );
  const pairs: Pair[] = new Array(count);
  for (const r of rows) pairs[r.i] = { roomId: r.id, a: `${prefix}${r.i}a`, b: `${prefix}${r.i}b` };
  return pairs;
}

/** Fills a room with `count` messages in one statement and moves its last_seq past them. */
export async function seedHistory(pool: pg.Pool, pair: Pair, count: number, contentChars = 80) {
  await pool.query(
    `insert into messages (id, chat_room_id, sender_id, content, seq, created_at)
     select gen_random_uuid(), $1, case when i % 2 = 0 then $2 else $3 end,
            rpad('history message ' || i || ' ', $5, 'x'), i, now() - make_interval(secs => $4 - i)
       from generate_series(1, $4) i`,
    [pair.roomId, pair.a, pair.b, count, contentChars],
  );
  await pool.query('update chat_rooms set last_seq = $2, last_message_at = now() where id = $1', [pair.roomId, count]);
}
