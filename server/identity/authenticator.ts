import type { EntityManager } from '@mikro-orm/postgresql';
import type { UserDirectory } from './user-directory.ts';
import type { TokenVerifier, VerifiedToken } from './token-verifier.ts';

export interface Authenticator {
  /** The user (stored on first sight) and expiry of a valid token; token ParleyErrors otherwise. */
  authenticate(token: string | undefined): Promise<VerifiedToken>;
}

export function createAuthenticator({ verifier, users, em }: { verifier: TokenVerifier; users: UserDirectory; em: () => EntityManager }): Authenticator {
  return {
    async authenticate(token) {
      const verified = await verifier.verify(token);
      // Most requests come from users already stored: no EntityManager fork for them.
      if (!users.known(verified.userId)) await users.ensure(em(), verified.userId);
      return verified;
    },
  };
}
