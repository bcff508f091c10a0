import { once } from 'node:events';
import { signToken } from '../../server/identity/sign-token.ts';
import { runMain, servingUrls, type MainProcess } from './main-process.ts';
import { startPeerApp, type PeerApp } from './peer-app.ts';
import { databaseUrl, withClient } from './template-database.ts';
import { ADMIN_URL, dropTestDatabase, freshDatabase, TEST_SECRET } from './test-app.ts';

export interface TestDatabase {
  url: string;
  /** A room's stored messages in seq order, read on a connection of the test's own. */
  messages(roomId: string): Promise<{ seq: number; content: string }[]>;
  drop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An empty database `parley_test_<tag>_<pid>` on the test PostgreSQL, for servers run as processes. */
export async function createTestDatabase(tag: string): Promise<TestDatabase> {
  const name = `parley_test_${tag.replace(/\W/g, '_').toLowerCase()}_${process.pid}`;
  await freshDatabase(name);
  const url = databaseUrl(ADMIN_URL, name);
  const messages = (roomId: string) =>
    withClient(url, async (c) => (await c.query<{ seq: number; content: string }>('select seq::int as seq, content from messages where chat_room_id = $1 order by seq', [roomId])).rows);
  const drop = () => dropTestDatabase(name);
  return { url, messages, drop, [Symbol.asyncDispose]: drop };
}

export interface InstanceProcess extends MainProcess {
  url: string;
  /** Where its `/metrics` is scraped: the primary's, under WORKERS. */
  metricsUrl: string;
  /** Resolves with the exit code, or the signal that ended it. */
  ended: Promise<number | string>;
}

/** `npm start`'s entry point as a child process on port 0 with `env` (a DATABASE_URL of the test's); resolves once it serves. */
export async function startInstanceProcess(env: Record<string, string>): Promise<InstanceProcess> {
  const main = runMain({ PORT: '0', LOG_LEVEL: 'info', JWT_SECRET: TEST_SECRET, SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', PRESENCE_OFFLINE_DELAY_MS: '0', ...env });
  const ended = once(main.child, 'exit').then(([code, signal]) => (code ?? signal) as number | string);
  const { url, metricsUrl } = await servingUrls(main);
  return { ...main, url, metricsUrl: metricsUrl!, ended };
}

/** The servers and databases of one test file, stopped and dropped together at its end. */
export function instanceFleet() {
  const servers: InstanceProcess[] = [];
  const inProcess: PeerApp[] = [];
  const dbs: TestDatabase[] = [];
  return {
    async database(tag: string) {
      const db = await createTestDatabase(tag);
      dbs.push(db);
      return db;
    },
    async start(env: Record<string, string>) {
      const server = await startInstanceProcess(env);
      servers.push(server);
      return server;
    },
    /**
     * Like {@link start}, but in this process (`env` needs a DATABASE_URL): for an instance the test
     * never signals, at a fifth of a process's start.
     */
    async startInProcess(env: Record<string, string>) {
      const instance = await startPeerApp({ databaseUrl: env.DATABASE_URL!, token: (userId) => signToken({ secret: TEST_SECRET, userId }) }, env);
      inProcess.push(instance);
      return instance;
    },
    async dispose() {
      for (const s of servers) if (s.child.exitCode === null) s.child.kill('SIGKILL');
      await Promise.allSettled(inProcess.map((i) => i.close()));
      await Promise.all(servers.map((s) => s.ended));
      await Promise.all(dbs.map((db) => db.drop()));
    },
  };
}
