import { prepared, runPrepared, type Sql } from '../infra/db/prepared.ts';
import { createReadBatcher } from '../messages/read-batcher.ts';

/** Users exist from the first time their id is seen (in a token, or as someone's chat partner). */
export interface UserDirectory {
  /**
   * Stores the user unless known, together with the other users first seen in this turn, in one
   * statement (after a restart every reconnecting user is new to the process), on `sql`'s pool:
   * outside any transaction the caller may be in.
   */
  ensure(sql: Sql, userId: string): Promise<void>;
  /** True when the user is known to be stored already (no database needed). */
  known(userId: string): boolean;
  /** The user's row may be gone (erased): the next request stores it again. */
  forget(userId: string): void;
}

const STORE_USERS = prepared('insert into users (id) select json_array_elements_text(?::json) on conflict (id) do nothing');

export function createUserDirectory({ cacheSize = 100_000 }: { cacheSize?: number } = {}): UserDirectory {
  // Ids known to be stored: saves an upsert per request on the send path.
  const known = new Set<string>();
  const stores = createReadBatcher<{ sql: Sql; userId: string }, void>({
    keyOf: (ask) => ask.userId,
    run: async (asks) => {
      await runPrepared(asks[0]!.sql, STORE_USERS, [JSON.stringify(asks.map((a) => a.userId))]);
      return asks.map(() => undefined);
    },
  });
  const remember = (userId: string) => {
    if (known.size >= cacheSize) known.clear();
    known.add(userId);
  };
  return {
    async ensure(sql, userId) {
      if (known.has(userId)) return;
      await stores.load({ sql, userId });
      remember(userId);
    },
    known: (userId) => known.has(userId),
    forget: (userId) => void known.delete(userId),
  };
}
