import type { EntityManager } from '@mikro-orm/postgresql';

/** Users exist from the first time their id is seen (in a token, or as someone's chat partner). */
export interface UserDirectory {
  ensure(em: EntityManager, userId: string): Promise<void>;
  /** True when the user is known to be stored already (no database needed). */
  known(userId: string): boolean;
  /** The user's row may be gone (erased): the next request stores it again. */
  forget(userId: string): void;
}

export function createUserDirectory({ cacheSize = 100_000 }: { cacheSize?: number } = {}): UserDirectory {
  // Ids known to be stored: saves an upsert per request on the send path.
  const known = new Set<string>();
  return {
    async ensure(em, userId) {
      if (known.has(userId)) return;
      await em.execute('insert into users (id) values (?) on conflict (id) do nothing', [userId]);
      if (known.size >= cacheSize) known.clear();
      known.add(userId);
    },
    known: (userId) => known.has(userId),
    forget: (userId) => void known.delete(userId),
  };
}
