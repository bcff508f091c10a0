import type { EntityManager } from '@mikro-orm/postgresql';
import type { UserDirectory } from './user-directory.ts';
import type { TokenVerifier, VerifiedToken } from './token-verifier.ts';

export interface Authenticator {
  /** The user (stored on first sight) and expiry of a valid token; token ParleyErrors otherwise. */
  authenticate(token: string | undefined): Promise<VerifiedToken>;
}

export interface AuthenticatorDeps {
  verifier: TokenVerifier;
  users: UserDirectory;
  em: () => EntityManager;
  /** Refuses a user a valid token does not admit (a ban); from memory, it adds no query per request. */
  admit?: (userId: string) => Promise<void>;
}

export function createAuthenticator({ verifier, users, em, admit }: AuthenticatorDeps): Authenticator {
  return {
    async authenticate(token) {
      const verified = await verifier.verify(token);
      await admit?.(verified.userId);
      // Most requests come from users already stored: no EntityManager fork for them.
      if (!users.known(verified.userId)) await users.ensure(em(), verified.userId);
      return verified;
    },
  };
}
