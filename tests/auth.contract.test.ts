import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { describe, expect, test } from 'vitest';
import { createChatClient, isParleyError } from '../client-sdk/index.ts';
import { createTokenVerifier, tokenKeys } from '../server/identity/token-verifier.ts';
import { openLegacySocket, upgradeStatus } from './support/legacy-socket.ts';
import { trpcHttp } from './support/raw-trpc.ts';
import { appTest, startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';

interface IdentityProvider {
  jwksUrl: string;
  token(claims?: { iss?: string; aud?: string }): Promise<string>;
}

const it = test.extend<{ $file: { idp: IdentityProvider; t: TestApp } }>({
  idp: [
    async ({}, use) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      await using jwks = createServer((_req, res) => res.setHeader('content-type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
      await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
      const address = jwks.address() as { port: number };
      await use({
        jwksUrl: `http://127.0.0.1:${address.port}/jwks.json`,
        token: (claims = {}) =>
          new SignJWT({})
            .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
            .setSubject('alice')
            .setIssuer(claims.iss ?? 'https://idp.example')
            .setAudience(claims.aud ?? 'parley')
            .setIssuedAt()
            .setExpirationTime('1h')
            .sign(privateKey),
      });
    },
    { scope: 'file' },
  ],
  t: [
    async ({ idp }, use) => {
      // No JWT_SECRET: only the identity provider's asymmetric keys are trusted.
      await using t = await startTestApp(import.meta.filename, {
        JWT_SECRET: undefined,
        JWT_JWKS_URL: idp.jwksUrl,
        JWT_ISSUER: 'https://idp.example',
        JWT_AUDIENCE: 'parley',
      });
      await use(t);
    },
    { scope: 'file' },
  ],
});

const roomsStatus = async (t: TestApp, token: string) => (await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${token}` } })).status;

describe('JWT_JWKS_URL with issuer and audience', () => {
  it('accepts a token signed by a key from the JWKS, over REST and tRPC', async ({ t, idp }) => {
    expect(await roomsStatus(t, await idp.token())).toBe(200);
    const chat = createChatClient({ url: t.url, token: await idp.token() });
    expect(await chat.rooms.list.query()).toEqual({ items: [], nextCursor: null });
    await chat.close();
  });

  it.for([
    ['a wrong issuer', (idp: IdentityProvider) => idp.token({ iss: 'https://evil.example' })],
    ['a wrong audience', (idp: IdentityProvider) => idp.token({ aud: 'someone-else' })],
    ['an HS256 token (no shared secret is configured)', () => new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuer('https://idp.example').setAudience('parley').setExpirationTime('1h').sign(new TextEncoder().encode('s'.repeat(40)))],
  ] as const)('rejects %s with 401', async ([, token], { t, idp }) => {
    expect(await roomsStatus(t, await token(idp))).toBe(401);
  });
});

describe('an identity provider that cannot be reached', () => {
  it('is a 503 AUTH_UNAVAILABLE (retry later), not a 401 that would discard a good token', async ({ idp }) => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise((resolve) => closed.close(resolve));
    await using down = await startTestApp('auth-jwks-down', { JWT_SECRET: undefined, JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`, JWT_ISSUER: 'https://idp.example', JWT_AUDIENCE: 'parley' });
    const res = await fetch(`${down.url}/rooms/`, { headers: { authorization: `Bearer ${await idp.token()}` } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ detail: expect.stringContaining('unavailable') });
    const chat = createChatClient({ url: down.url, token: await idp.token() });
    await expect(chat.rooms.list.query()).rejects.toMatchObject({ data: { code: 'SERVICE_UNAVAILABLE', parleyCode: 'AUTH_UNAVAILABLE' } });
    await chat.close();
  });
});

const MAX_AGE = 3600;
/** An app of the file's that verifies with the shared secret instead, tokens limited to an hour's age. */
const secretIt = appTest(`${import.meta.filename}-secret`, { JWT_MAX_AGE_SECONDS: String(MAX_AGE) });

describe('tokens signed with JWT_SECRET need exp, a past iat, and an age within JWT_MAX_AGE_SECONDS', () => {
  const key = new TextEncoder().encode(TEST_SECRET);
  const now = () => Math.floor(Date.now() / 1000);
  const jwt = (claims: { sub?: string; iat?: number; exp?: number }) => {
    let token = new SignJWT({}).setProtectedHeader({ alg: 'HS256' });
    if (claims.sub !== undefined) token = token.setSubject(claims.sub);
    if (claims.iat !== undefined) token = token.setIssuedAt(claims.iat);
    if (claims.exp !== undefined) token = token.setExpirationTime(claims.exp);
    return token.sign(key);
  };
  const rooms = (app: TestApp, headers: Record<string, string>) => fetch(`${app.url}/rooms/`, { headers });

  secretIt.for([
    ['no exp', 'TOKEN_INVALID', 'exp', () => jwt({ sub: 'alice', iat: now() })],
    ['iat in the future', 'TOKEN_INVALID', 'iat', () => jwt({ sub: 'alice', iat: now() + 120, exp: now() + 600 })],
    ['older than the maximum age', 'TOKEN_EXPIRED', 'iat', () => jwt({ sub: 'alice', iat: now() - MAX_AGE - 10, exp: now() + 600 })],
    ['no iat while a maximum age is set', 'TOKEN_INVALID', 'iat', () => jwt({ sub: 'alice', exp: now() + 600 })],
  ] as const)('%s: 401 %s (claim %s) on REST, tRPC and ws/chat', async ([, parleyCode, claim, token], { t }) => {
    const bad = await token();
    const res = await rooms(t, { authorization: `Bearer ${bad}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await trpcHttp(t.url, 'rooms.list', undefined, bad, 'query')).error!.data).toMatchObject({ parleyCode, details: { claim } });
    expect(await upgradeStatus(t.url, `/ws/chat/alice/bob/?token=${bad}`)).toBe(401);
  });

  secretIt('a socket closes with 4501 when its token reaches the maximum age, before its exp', async ({ t }) => {
    const token = await jwt({ sub: 'alice', iat: now() - MAX_AGE + 2, exp: now() + 600 });
    const socket = await openLegacySocket(t.url, 'alice', 'bob', token);
    const started = Date.now();
    expect((await socket.closed).code).toBe(4501);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  secretIt('only the Bearer scheme carries a token: a bare JWT in Authorization is a 401 with WWW-Authenticate: Bearer, on REST, tRPC and ws/chat', async ({ t }) => {
    const alice = await t.token('alice');
    const res = await rooms(t, { authorization: alice });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="parley"');
    const trpc = await fetch(`${t.url}/trpc/rooms.list`, { headers: { authorization: alice } });
    expect(trpc.status).toBe(401);
    expect(await upgradeStatus(t.url, '/ws/chat/alice/bob/', { authorization: alice })).toBe(401);
    expect((await rooms(t, { authorization: `bearer ${alice}` })).status).toBe(200);
  });
});

describe('a token signed with JWT_SECRET is held to what jose holds it to, whichever way its signature is checked', () => {
  const verifier = createTokenVerifier({ hsSecret: TEST_SECRET, maxAgeSeconds: 3600 });
  const key = new TextEncoder().encode(TEST_SECRET);
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (header: { alg: string; [k: string]: unknown }, claims: { exp?: number; iat?: number } = {}) =>
    new SignJWT({}).setProtectedHeader(header).setSubject('alice').setIssuedAt(claims.iat ?? now()).setExpirationTime(claims.exp ?? now() + 600).sign(key);
  // jose signs no header with a critical parameter it does not know.
  const signedByHand = (header: object, payload: string) => {
    const signingInput = `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${payload}`;
    return `${signingInput}.${createHmac('sha256', TEST_SECRET).update(signingInput).digest('base64url')}`;
  };
  const refusal = async (token: string) => {
    try {
      await verifier.verify(token);
    } catch (err) {
      return isParleyError(err) ? { code: err.code, details: err.details } : err;
    }
    return 'accepted';
  };

  test('headers with more than alg and typ, and plain ones, are both accepted', async () => {
    expect(await verifier.verify(await sign({ alg: 'HS256' }))).toMatchObject({ userId: 'alice' });
    expect(await verifier.verify(await sign({ alg: 'HS256', typ: 'JWT' }))).toMatchObject({ userId: 'alice' });
    expect(await verifier.verify(await sign({ alg: 'HS256', kid: 'k1' }))).toMatchObject({ userId: 'alice' });
  });

  test('another signature, a changed payload, a header that is not base64url, an unknown critical header and alg none are refused', async () => {
    const good = await sign({ alg: 'HS256' });
    const [header, payload, signature] = good.split('.') as [string, string, string];
    const otherPayload = Buffer.from(JSON.stringify({ sub: 'mallory', exp: now() + 600, iat: now() })).toString('base64url');
    for (const bad of [
      `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`,
      `${header}.${otherPayload}.${signature}`,
      `${header}!.${payload}.${signature}`,
      signedByHand({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': true }, payload),
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`,
    ]) {
      expect(await refusal(bad), bad).toMatchObject({ code: 'TOKEN_INVALID' });
    }
  });

  test('claims are checked the same way: exp passed, iat in the future, older than the maximum age', async () => {
    expect(await refusal(await sign({ alg: 'HS256' }, { exp: now() - 10 }))).toMatchObject({ code: 'TOKEN_EXPIRED', details: { claim: 'exp' } });
    expect(await refusal(await sign({ alg: 'HS256' }, { iat: now() + 120 }))).toMatchObject({ code: 'TOKEN_INVALID', details: { claim: 'iat' } });
    expect(await refusal(await sign({ alg: 'HS256' }, { iat: now() - 4000 }))).toMatchObject({ code: 'TOKEN_EXPIRED', details: { claim: 'iat' } });
  });
});

describe('a verifier given no usable key', () => {
  const misconfigured = (make: () => unknown) => {
    try {
      make();
    } catch (err) {
      return err;
    }
    return undefined;
  };

  it('is refused when it is built, with a plain error: a mistake of the configuration, never a client’s INTERNAL', () => {
    for (const err of [
      misconfigured(() => createTokenVerifier({ hsSecret: 'short' })),
      misconfigured(() => createTokenVerifier({ jwksUrl: '' })),
      misconfigured(() => tokenKeys(undefined, undefined)),
    ]) {
      expect(err).toBeInstanceOf(Error);
      expect(isParleyError(err)).toBe(false);
    }
    expect(tokenKeys('s'.repeat(32), undefined)).toEqual({ hsSecret: 's'.repeat(32), jwksUrl: undefined });
    expect(tokenKeys(undefined, 'https://idp.example/jwks.json')).toEqual({ jwksUrl: 'https://idp.example/jwks.json' });
    // @ts-expect-error neither a secret nor a key set: refused by the types already
    void (() => createTokenVerifier({ issuer: 'https://idp.example' }));
  });
});
