import type { EntityManager } from '@mikro-orm/postgresql';
import type { UserDirectory } from '../domain/user-directory.ts';
import type { TokenVerifier } from './token-verifier.ts';

export interface Authenticator {
  /** The user id of a valid token, stored on first sight; token ParleyErrors otherwise. */
  authenticate(token: string | undefined): Promise<string>;
}

export function createAuthenticator({ verifier, users, em }: { verifier: TokenVerifier; users: UserDirectory; em: () => EntityManager }): Authenticator {
  return {
    async authenticate(token) {
      const userId = await verifier.verify(token);
      // Most requests come from users already stored: no EntityManager fork for them.
      if (!users.known(userId)) await users.ensure(em(), userId);
      return userId;
    },
  };
}
