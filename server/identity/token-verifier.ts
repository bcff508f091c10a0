import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, UnsecuredJWT, type JWTClaimVerificationOptions, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { isParleyError, ParleyError, UserId, type AnyParleyError } from '../../contracts/index.ts';

/** Where verification keys come from: an HS256 secret, a JWKS, or both; never neither. */
export type TokenKeys =
  | {
      /** HS256 shared secret (at least 32 characters). */
      hsSecret: string;
      /** URL of a JWKS for asymmetric keys (RS256, ES256, EdDSA, ...). */
      jwksUrl?: string | undefined;
    }
  | { hsSecret?: undefined; jwksUrl: string };

export type TokenVerifierOptions = TokenKeys & TokenClaimRules;

export interface TokenClaimRules {
  issuer?: string | undefined;
  audience?: string | undefined;
  /**
   * Oldest token accepted, in seconds since its `iat`, whatever its `exp` says; 0 = no limit.
   * When set, tokens must carry `iat`. Default 0.
   */
  maxAgeSeconds?: number;
  /** Verified tokens remembered until they expire, so a client's next request skips the signature check. Default 10,000. */
  cacheSize?: number;
  /** The claim whose value `admin` (or a list holding it) makes a token an admin token. Default `role`. */
  roleClaim?: string;
}

/** Who a valid token speaks for, and until when (ms since the epoch: its `exp`, or sooner at its maximum age). */
export interface VerifiedToken {
  userId: string;
  expiresAt: number;
}

/** An admin token's holder: its `sub` when it has one (then it is a user's token too), and its expiry. */
export interface VerifiedAdmin {
  subject: string | undefined;
  expiresAt: number;
}

export interface TokenVerifier {
  /** Resolves for a valid token; throws a token ParleyError otherwise. */
  verify(token: string | undefined | null): Promise<VerifiedToken>;
  /** Resolves for a valid token carrying the admin role, with or without `sub`; FORBIDDEN for a valid token without the role. */
  verifyAdmin(token: string | undefined | null): Promise<VerifiedAdmin>;
}

/** What a verified token says, whichever authority is asked of it. */
interface Claims {
  subject: string | undefined;
  admin: boolean;
  expiresAt: number;
}

/** The keys of a configuration that may name none; a configuration without any is refused here, as a mistake. */
export function tokenKeys(hsSecret: string | undefined, jwksUrl: string | undefined): TokenKeys {
  if (hsSecret !== undefined) return { hsSecret, jwksUrl };
  if (jwksUrl !== undefined) return { jwksUrl };
  throw new Error('Token verification needs an HS256 secret or a JWKS URL.');
}

const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const { hsSecret, jwksUrl, issuer, audience, maxAgeSeconds = 0, cacheSize = 10_000, roleClaim = 'role' } = options;
  // A programming or configuration mistake, found at start-up: not a refusal any client should see.
  if (hsSecret !== undefined && hsSecret.length < 32) throw new RangeError('createTokenVerifier: hsSecret must be at least 32 characters');
  if (!hsSecret && !jwksUrl) throw new TypeError('createTokenVerifier needs hsSecret or jwksUrl');
  // A KeyObject is imported once; raw bytes would be re-imported through WebCrypto on every verify.
  const hsKey = hsSecret ? createSecretKey(Buffer.from(hsSecret, 'utf8')) : undefined;
  const verified = new Map<string, { claims: Claims; cachedUntil: number }>();
  const jwks: JWTVerifyGetKey | undefined = jwksUrl ? keysOrUnavailable(createRemoteJWKSet(new URL(jwksUrl))) : undefined;
  // A token without `exp` would be valid, and its sockets open, forever.
  const claims = {
    requiredClaims: ['exp'],
    ...(maxAgeSeconds > 0 ? { maxTokenAge: maxAgeSeconds } : {}),
    ...(issuer ? { issuer } : {}),
    ...(audience ? { audience } : {}),
  };

  async function verifyWithKey(token: string): Promise<{ payload: JWTPayload }> {
    // The allow-list of algorithms is what refuses `alg: none` and HS/RS confusion.
    if (hsKey) {
      const payload = hs256Payload(token, hsKey, claims);
      if (payload) return { payload };
      try {
        return await jwtVerify(token, hsKey, { ...claims, algorithms: ['HS256'] });
      } catch (err) {
        if (!jwks || !(err instanceof errors.JOSEAlgNotAllowed)) throw err;
      }
    }
    return await jwtVerify(token, jwks!, { ...claims, algorithms: ASYMMETRIC_ALGS });
  }

  async function claimsOf(token: string | undefined | null): Promise<Claims> {
    if (!token) throw new ParleyError('UNAUTHENTICATED', 'Authentication credentials were not provided.');
    const hit = verified.get(token);
    if (hit && Date.now() < hit.cachedUntil) return hit.claims;
    let payload;
    try {
      ({ payload } = await verifyWithKey(token));
    } catch (err) {
      throw refusalOf(err);
    }
    // jose checks that `iat` is not in the future only when a maximum age is set.
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000) {
      throw new ParleyError('TOKEN_INVALID', 'Token claim "iat" is invalid.', { claim: 'iat', reason: 'check_failed' });
    }
    const sub = UserId.safeParse(payload.sub);
    const role = payload[roleClaim];
    const agedOut = maxAgeSeconds > 0 && payload.iat !== undefined ? payload.iat + maxAgeSeconds : Infinity;
    const claims = {
      subject: sub.success ? sub.data : undefined,
      admin: role === 'admin' || (Array.isArray(role) && role.includes('admin')),
      expiresAt: Math.min(payload.exp!, agedOut) * 1000,
    };
    // Remembered never past expiry (nor past 10 minutes, so a JWKS key rotation takes effect).
    if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
    verified.set(token, { claims, cachedUntil: Math.min(claims.expiresAt, Date.now() + 600_000) });
    return claims;
  }

  return {
    async verify(token) {
      const { subject, expiresAt } = await claimsOf(token);
      // An admin token without `sub` speaks for no user: it opens the admin API only.
      if (subject === undefined) throw new ParleyError('TOKEN_INVALID', 'Token has no valid subject.', { claim: 'sub', reason: 'missing or invalid' });
      return { userId: subject, expiresAt };
    },

    async verifyAdmin(token) {
      const { subject, admin, expiresAt } = await claimsOf(token);
      if (!admin) throw new ParleyError('FORBIDDEN', 'This requires an admin token.');
      return { subject, expiresAt };
    },
  };
}

/** The protected header of an unsecured JWT, `{"alg":"none"}`: how a payload is handed to jose's claim checks alone. */
const UNSECURED_HEADER = Buffer.from('{"alg":"none"}').toString('base64url');
const PLAIN_HEADER_KEYS = new Set(['alg', 'typ']);

/**
 * The payload of an HS256 token whose header holds only `alg` (and `typ`) and whose signature
 * matches, with its claims checked by jose's own rules (`UnsecuredJWT.decode` runs the checks
 * `jwtVerify` runs, and throws the same errors); undefined for any other token, which `jwtVerify`
 * then verifies and, if it must, refuses. jose checks an HMAC through WebCrypto: about 100 µs of
 * CPU a token here, against 10 with node:crypto, and a reconnect storm brings every client's token
 * to a new instance at once.
 */
function hs256Payload(token: string, key: KeyObject, claims: JWTClaimVerificationOptions): JWTPayload | undefined {
  const headerEnd = token.indexOf('.');
  const payloadEnd = token.indexOf('.', headerEnd + 1);
  if (headerEnd <= 0 || payloadEnd < 0 || token.includes('.', payloadEnd + 1)) return undefined;
  const encodedHeader = token.slice(0, headerEnd);
  const headerBytes = Buffer.from(encodedHeader, 'base64url');
  // Buffer skips what is not base64url, where jose refuses it.
  if (headerBytes.toString('base64url') !== encodedHeader) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(headerBytes.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return undefined;
  if ((header as { alg?: unknown }).alg !== 'HS256' || Object.keys(header).some((k) => !PLAIN_HEADER_KEYS.has(k))) return undefined;
  // Compared as text: a signature spelt any other way than the canonical base64url is no match.
  const expected = Buffer.from(createHmac('sha256', key).update(token.slice(0, payloadEnd)).digest('base64url'));
  const given = Buffer.from(token.slice(payloadEnd + 1));
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  return UnsecuredJWT.decode(`${UNSECURED_HEADER}.${token.slice(headerEnd + 1, payloadEnd)}.`, claims).payload;
}

/**
 * A JWKS that cannot be fetched (down, timing out, answering garbage) is our outage, not a bad
 * token: 503, so clients retry instead of discarding a good token. A key the JWKS lacks is still
 * the token's fault.
 */
function keysOrUnavailable(jwks: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) throw err;
      throw new ParleyError('AUTH_UNAVAILABLE', 'The token cannot be verified right now: the key set is unavailable.', { reason: err instanceof errors.JOSEError ? err.code : 'fetch failed' });
    }
  };
}

/** What jose threw, as the refusal of a token: expired, invalid, or (from keysOrUnavailable) a JWKS outage. */
function refusalOf(err: unknown): AnyParleyError {
  if (isParleyError(err)) return err;
  if (err instanceof errors.JWTExpired) {
    // `exp` passed, or `iat` older than the maximum age.
    return new ParleyError('TOKEN_EXPIRED', 'Token has expired.', { claim: err.claim, reason: err.reason });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return new ParleyError('TOKEN_INVALID', `Token claim "${err.claim}" is invalid.`, { claim: err.claim, reason: err.reason });
  }
  if (err instanceof errors.JOSEError) {
    return new ParleyError('TOKEN_INVALID', 'Token is invalid.', { reason: err.code });
  }
  // Not the token's fault, nor one we foresaw: a 500, logged.
  return new ParleyError('INTERNAL', 'Token verification failed.', { reason: 'unexpected' });
}
