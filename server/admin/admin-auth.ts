import { createHash, timingSafeEqual } from 'node:crypto';
import type { TokenVerifier } from '../identity/token-verifier.ts';
import type { BanView } from './ban-view.ts';

/** Who acts: an admin token's `sub` (or `admin` without one), or `admin-token` for the static secret. */
export interface AdminActor {
  id: string;
}

export interface AdminAuthenticator {
  /** The admin behind `token`; UNAUTHENTICATED, a token refusal, or FORBIDDEN for a token without the admin role. */
  authenticate(token: string | undefined): Promise<AdminActor>;
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Admin authority is separate from a user's: a token with the admin role claim, or the static
 * `ADMIN_TOKEN`. The static secret is compared in constant time, through digests of equal length,
 * so neither its content nor its length leaks through timing.
 */
export function createAdminAuthenticator({ verifier, adminToken, bans }: { verifier: TokenVerifier; adminToken: string | undefined; bans: BanView }): AdminAuthenticator {
  const staticDigest = adminToken === undefined ? undefined : digest(adminToken);
  return {
    async authenticate(token) {
      if (token && staticDigest && timingSafeEqual(digest(token), staticDigest)) return { id: 'admin-token' };
      const { subject } = await verifier.verifyAdmin(token);
      // An admin who is also a user, and banned as one, is refused here too.
      if (subject !== undefined) await bans.check(subject);
      return { id: subject ?? 'admin' };
    },
  };
}
