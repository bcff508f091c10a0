import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that can cut a server off from it at an exact point: once
 * armed, the first statement containing a given text is let through, and from the moment it has
 * committed (the first ReadyForQuery after it that says idle: the statement's own, or that of the
 * commit ending its transaction) nothing more the server writes reaches PostgreSQL, on any
 * connection. The server sees its change commit and nothing after it: what a process killed
 * right after a commit leaves behind. The other connections are held from the moment that
 * statement is sent: a job queue's poll on one of them could otherwise claim the job the change
 * just committed, and a claim by the process about to die waits out its lease (two minutes)
 * before another instance may run the job.
 */
export interface PgFreezeProxy {
  /** A DATABASE_URL through the proxy. */
  url: string;
  /** Cuts off everything written after the next statement that contains `text` has committed. */
  freezeAfter(text: string): Promise<void>;
  close(): Promise<void>;
}

/** ReadyForQuery: 'Z', length 5, then the transaction status: 'I' idle, i.e. nothing uncommitted. */
const READY_IDLE = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);

export async function startPgFreezeProxy(databaseUrl: string): Promise<PgFreezeProxy> {
  const target = new URL(databaseUrl);
  const sockets = new Set<Socket>();
  let armed: { text: string; frozen: () => void } | undefined;
  let frozen = false;
  let holding = false;

  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    let watching = false;
    let sent = '';
    client.on('data', (chunk: Buffer) => {
      if (frozen) return;
      if (armed && !watching) {
        // A statement's text can straddle two reads.
        sent = (sent + chunk.toString('latin1')).slice(-64_000);
        if (sent.includes(armed.text)) watching = holding = true;
      }
      if (holding && !watching) return;
      upstream.write(chunk);
    });
    let answer = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      if (watching && armed) {
        answer = Buffer.concat([answer, chunk]).subarray(-16);
        if (answer.includes(READY_IDLE)) {
          frozen = true;
          armed.frozen();
          armed = undefined;
        }
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.href,
    freezeAfter: (text) => new Promise<void>((resolve) => (armed = { text, frozen: resolve })),
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
