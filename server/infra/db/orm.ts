import { MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { migrationsList } from '../../../migrations/index.ts';
import { ChatRoom } from './entities/chat-room.entity.ts';
import { Message } from './entities/message.entity.ts';
import { User } from './entities/user.entity.ts';

export interface OrmOptions {
  clientUrl: string;
  poolMax: number;
  /** Streaming replicas of `clientUrl`, read only through server/infra/db/read-replicas.ts. */
  replicaUrls?: readonly string[];
}

/**
 * A replica that does not answer must not hold a read for long: the read falls back to the
 * primary, and pg waits for a connection forever by default.
 */
const REPLICA_CONNECT_TIMEOUT_MS = 2_000;

export type Orm = MikroORM;

export async function createOrm({ clientUrl, poolMax, replicaUrls = [] }: OrmOptions): Promise<Orm> {
  return MikroORM.init({
    clientUrl,
    replicas: replicaUrls.map((url, i) => ({ name: `replica-${i + 1}`, clientUrl: url, pool: { min: 0, max: poolMax }, driverOptions: { connectionTimeoutMillis: REPLICA_CONNECT_TIMEOUT_MS } })),
    // Off: the ORM would send entity reads to a replica that may not have replayed the caller's
    // own writes yet. Only the reads that check how far a replica has replayed go there.
    preferReadReplicas: false,
    entities: [User, ChatRoom, Message],
    extensions: [Migrator],
    pool: { min: 0, max: poolMax },
    debug: false,
    migrations: {
      migrationsList,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
  });
}

/**
 * Each replica's connection, in DATABASE_REPLICA_URLS order. `em.getConnection('read')` picks
 * one at random; the read router must choose, skipping one that is down or behind.
 */
export function replicaConnections(orm: Orm): Array<ReturnType<Orm['em']['getConnection']>> {
  return (orm.driver as unknown as { replicas: Array<ReturnType<Orm['em']['getConnection']>> }).replicas;
}

interface PoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/**
 * Closes the ORM once its pools are idle, within `withinMs`; false if a connection was still
 * checked out when the time ran out (the pools are left to the process's exit then).
 *
 * Closing while a connection is still being opened would leak it: kysely's driver drops its pool
 * on destroy, so a connection that arrives afterwards fails to be wrapped and is never released,
 * and pg's `end()` waits for it for ever. Letting the queries in flight finish first avoids that;
 * whoever started them (a job pass, a view's first load) is already closed and starts no more.
 */
export async function closeOrm(orm: Orm, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  const pools = (await Promise.all([orm.em.getConnection(), ...replicaConnections(orm)].map((c) => c.getNativeClient()))) as unknown as PoolCounts[];
  const busy = () => pools.some((p) => p.totalCount > p.idleCount || p.waitingCount > 0);
  while (busy() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      orm.close(true).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Applies pending migrations; returns the names applied. */
export async function migrate(orm: Orm): Promise<string[]> {
  const applied = await orm.migrator.up();
  return applied.map((m) => m.name);
}

/**
 * Migrations on the direct address when the pool goes through a transaction-mode pooler: a
 * migration's DDL and the migrator's bookkeeping belong on one session, and a pooler may hand
 * each statement outside a transaction to another.
 */
export async function migrateAt(orm: Orm, { databaseUrl, databaseDirectUrl }: { databaseUrl: string | undefined; databaseDirectUrl: string | undefined }): Promise<string[]> {
  if (!databaseDirectUrl || databaseDirectUrl === databaseUrl) return migrate(orm);
  const direct = await createOrm({ clientUrl: databaseDirectUrl, poolMax: 1 });
  try {
    return await migrate(direct);
  } finally {
    await direct.close(true);
  }
}

/**
 * An EntityManager forked when it is first used (each procedure's, see services.ts). The calls
 * that come by the thousand (a send, typing, a read marker) find the room in a cache and run raw
 * SQL on the shared connection, never touching it; forked up front, it was the largest allocation of a send after
 * tRPC's own (a unit of work, identity maps, loaders), and it lived through the send statement's
 * round trip, so every young-generation collection in that time copied it. MikroORM's methods
 * read private fields, so they are called on the fork itself, not on this stand-in.
 */
export function forkOnUse(orm: Orm): EntityManager {
  let em: EntityManager | undefined;
  return new Proxy({} as EntityManager, {
    get(_, key) {
      // Raw SQL (read markers, delivered markers) needs the connection only, which every fork shares.
      if (key === 'getConnection' && !em) return orm.em.getConnection.bind(orm.em);
      // A fork not made yet has begun no transaction: asking (a cold room's participants) makes none.
      if (key === 'isInTransaction' && !em) return () => false;
      em ??= orm.em.fork();
      const value: unknown = Reflect.get(em, key, em);
      return typeof value === 'function' ? value.bind(em) : value;
    },
  });
}
