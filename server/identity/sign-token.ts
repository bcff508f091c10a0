import { SignJWT } from 'jose';

export interface SignTokenOptions {
  secret: string;
  userId: string;
  /** Lifetime as a jose time span, e.g. '1h', '30d'. Default '30d'. */
  expiresIn?: string;
  issuer?: string | undefined;
  audience?: string | undefined;
}

/** Issues an HS256 token; used by `npm run token`, the tests and the benchmarks. */
export async function signToken({ secret, userId, expiresIn = '30d', issuer, audience }: SignTokenOptions): Promise<string> {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(userId).setIssuedAt().setExpirationTime(expiresIn);
  if (issuer) jwt = jwt.setIssuer(issuer);
  if (audience) jwt = jwt.setAudience(audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
