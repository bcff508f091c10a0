import { SignJWT } from 'jose';

export interface SignTokenOptions {
  secret: string;
  /** The `sub`; an admin token may go without one (it then opens the admin API only). */
  userId?: string | undefined;
  /** Lifetime as a jose time span, e.g. '1h', '30d'. Default '30d'. */
  expiresIn?: string;
  issuer?: string | undefined;
  audience?: string | undefined;
  /** More claims, e.g. `{ role: 'admin' }`. */
  claims?: Record<string, unknown>;
}

/** Issues an HS256 token; used by `npm run token`, the tests and the benchmarks. */
export async function signToken({ secret, userId, expiresIn = '30d', issuer, audience, claims = {} }: SignTokenOptions): Promise<string> {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn);
  if (userId !== undefined) jwt = jwt.setSubject(userId);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
