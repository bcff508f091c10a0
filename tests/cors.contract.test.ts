import { describe, expect } from 'vitest';
import { loadConfig } from '../server/infra/config/config.ts';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

// A browser on an allowed origin can call the API; others cannot.
const ALLOWED = 'http://localhost:5173';
const it = appTest(import.meta.filename, { CORS_ORIGINS: `${ALLOWED},https://chat.example.com` });

const preflight = (t: TestApp, path: string, origin: string, method = 'POST') =>
  fetch(t.url + path, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': 'authorization,content-type' },
  });

describe('CORS from CORS_ORIGINS', () => {
  it.for([
    ['a tRPC procedure', '/trpc/messages.send'],
    ['a tRPC batch', '/trpc/rooms.list,messages.list?batch=1'],
    ['a legacy REST route', '/rooms/'],
  ] as const)('a preflight to %s from an allowed origin is a 204 allowing the method and headers', async ([, path], { t }) => {
    const res = await preflight(t, path, ALLOWED);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization.*content-type/);
    expect(res.headers.get('vary')).toMatch(/origin/i);
  });

  it('a preflight from another origin is not allowed', async ({ t }) => {
    const res = await preflight(t, '/trpc/messages.send', 'https://evil.example');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('the actual cross-origin request carries the CORS headers and exposes Link and WWW-Authenticate', async ({ t }) => {
    const token = await t.token('alice');
    const res = await fetch(`${t.url}/rooms/`, { headers: { origin: ALLOWED, authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-expose-headers')).toMatch(/link.*www-authenticate/);
    const trpc = await fetch(`${t.url}/trpc/rooms.list`, { headers: { origin: ALLOWED, authorization: `Bearer ${token}` } });
    expect(trpc.status).toBe(200);
    expect(trpc.headers.get('access-control-allow-origin')).toBe(ALLOWED);
  });

  it('defaults: none in production and test, loopback origins in development; bad lists are refused at start', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: TEST_SECRET }).corsOrigins).toEqual([]);
    expect(loadConfig({ NODE_ENV: 'test', JWT_SECRET: TEST_SECRET }).corsOrigins).toEqual([]);
    expect(loadConfig({ NODE_ENV: 'development' }).corsOrigins).toBe('loopback');
    expect(loadConfig({ NODE_ENV: 'development', CORS_ORIGINS: 'none' }).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: '*' }).corsOrigins).toBe('*');
    expect(() => loadConfig({ CORS_ORIGINS: 'https://chat.example.com/app' })).toThrow(/CORS_ORIGINS/);
  });
});
