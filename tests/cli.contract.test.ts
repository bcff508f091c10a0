import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { describe, expect } from 'vitest';
import { appTest, TEST_SECRET, type TestApp } from './support/test-app.ts';

// The errors a person reads on the real commands.
const it = appTest(import.meta.filename);

const STACK_FRAME = /^\s+at /m;

/** Runs `npm run -s <script> -- <args>` (npm's own banner off, as a person would type it). */
const npmRun = (t: TestApp, script: string, args: string[], env: Record<string, string> = {}) => run(t, 'npm', ['run', '-s', script, '--', ...args], env);

function run(t: TestApp, command: string, args: string[], env: Record<string, string> = {}) {
  const child = spawn(command, args, {
    env: { ...process.env, NODE_ENV: 'test', JWT_SECRET: TEST_SECRET, DATABASE_URL: t.databaseUrl, LOG_LEVEL: 'info', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = once(child, 'exit').then(([code]) => ({ code: code as number, ...out }));
  return { child, out, exited };
}

describe('start-up and token mistakes print one line saying what to do', () => {
  it('npm start on a busy port', async ({ t }) => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      const { code, stdout, stderr } = await npmRun(t, 'start', [], { PORT: String(port), HOST: '127.0.0.1' }).exited;
      expect(code).toBe(1);
      expect(stderr.trim().split('\n'), stderr).toEqual([`Port ${port} on 127.0.0.1 is already in use: stop the process using it, or start on another port, e.g. PORT=${port + 1} npm start.`]);
      expect(stdout + stderr).not.toMatch(STACK_FRAME);
    } finally {
      busy.close();
    }
  });

  it('npm start with a busy METRICS_PORT', async ({ t }) => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      const { code, stdout, stderr } = await npmRun(t, 'start', [], { PORT: '0', METRICS_PORT: String(port) }).exited;
      expect(code).toBe(1);
      expect(stderr.trim().split('\n'), stderr).toEqual([`METRICS_PORT ${port} on 127.0.0.1 is already in use: stop the process using it, or choose another, e.g. METRICS_PORT=${port + 1} (or METRICS_PORT=off).`]);
      expect(stdout + stderr).not.toMatch(STACK_FRAME);
    } finally {
      busy.close();
    }
  });

  it('npm run token -- --help prints the usage and succeeds', async ({ t }) => {
    const { code, stdout, stderr } = await npmRun(t, 'token', ['--help']).exited;
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^usage: npm run token -- <userId> \[--expires 30d\]/);
    expect(stderr).toBe('');
  });

  it.for([
    [['alice', '--expires', 'banana'], '--expires "banana" is not a lifetime: use a number with s, m, h, d or w, e.g. --expires 12h.'],
    [['alice', '--expires', '90d'], '--expires 90d is longer than JWT_MAX_AGE_SECONDS (2592000 s), after which the server refuses the token: choose a shorter lifetime.'],
    [['--nope'], expect.stringMatching(/^usage: npm run token/)],
    [[], expect.stringMatching(/^usage: npm run token/)],
  ] as const)('npm run token -- %j', async ([args, line], { t }) => {
    const { code, stdout, stderr } = await npmRun(t, 'token', [...args]).exited;
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([line]);
    expect(stdout + stderr).not.toMatch(STACK_FRAME);
  });

  it('npm run token -- alice --expires 2h prints a token the server accepts', async ({ t }) => {
    const { code, stdout } = await npmRun(t, 'token', ['alice', '--expires', '2h']).exited;
    expect(code).toBe(0);
    expect((await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${stdout.trim()}` } })).status).toBe(200);
  });

  it('npm run token -- --admin prints an admin-only token; with a user id, one that is that user’s too', async ({ t }) => {
    const adminOnly = (await npmRun(t, 'token', ['--admin']).exited).stdout.trim();
    const both = (await npmRun(t, 'token', ['mod', '--admin']).exited).stdout.trim();
    const call = (path: string, token: string) => fetch(`${t.url}${path}`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await call('/trpc/admin.audit.list', adminOnly)).toBe(200);
    expect(await call('/rooms/', adminOnly)).toBe(401);
    expect(await call('/trpc/admin.audit.list', both)).toBe(200);
    expect(await call('/rooms/', both)).toBe(200);
  });
});
