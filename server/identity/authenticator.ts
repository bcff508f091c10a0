import type { Sql } from '../infra/db/read-replicas.ts';
import type { UserDirectory } from './user-directory.ts';
import type { TokenVerifier, VerifiedToken } from './token-verifier.ts';

export interface Authenticator {
  /** The user (stored on first sight) and expiry of a valid token; token ParleyErrors otherwise. */
  authenticate(token: string | undefined): Promise<VerifiedToken>;
}

export interface AuthenticatorDeps {
  verifier: TokenVerifier;
  users: UserDirectory;
  sql: Sql;
  /** Refuses a user a valid token does not admit (a ban); from memory, it adds no query per request. */
  admit?: (userId: string) => Promise<void>;
}

export function createAuthenticator({ verifier, users, sql, admit }: AuthenticatorDeps): Authenticator {
  return {
    async authenticate(token) {
      const verified = await verifier.verify(token);
      await admit?.(verified.userId);
      // Most requests come from users already stored: no statement for them.
      if (!users.known(verified.userId)) await users.ensure(sql, verified.userId);
      return verified;
    },
  };
}
