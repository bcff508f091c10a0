import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upgradeStatus } from '../support/legacy-socket.ts';
import { startTestApp, TEST_SECRET, type TestApp } from '../support/test-app.ts';

// What reaches the log, and the errors a person reads, on the real commands.
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(import.meta.filename);
});
afterAll(() => t?.close());

const STACK_FRAME = /^\s+at /m;

/** Runs `npm run -s <script> -- <args>` (npm's own banner off, as a person would type it). */
const npmRun = (script: string, args: string[], env: Record<string, string> = {}) => run('npm', ['run', '-s', script, '--', ...args], env);

function run(command: string, args: string[], env: Record<string, string> = {}) {
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
  it('npm start on a busy port', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as { port: number };
    try {
      const { code, stdout, stderr } = await npmRun('start', [], { PORT: String(port), HOST: '127.0.0.1' }).exited;
      expect(code).toBe(1);
      expect(stderr.trim().split('\n'), stderr).toEqual([`Port ${port} on 127.0.0.1 is already in use: stop the process using it, or start on another port, e.g. PORT=${port + 1} npm start.`]);
      expect(stdout + stderr).not.toMatch(STACK_FRAME);
    } finally {
      busy.close();
    }
  });

  it('npm run token -- --help prints the usage and succeeds', async () => {
    const { code, stdout, stderr } = await npmRun('token', ['--help']).exited;
    expect(code).toBe(0);
    expect(stdout.trim()).toMatch(/^usage: npm run token -- <userId> \[--expires 30d\]/);
    expect(stderr).toBe('');
  });

  it.each([
    [['alice', '--expires', 'banana'], '--expires "banana" is not a lifetime: use a number with s, m, h, d or w, e.g. --expires 12h.'],
    [['alice', '--expires', '90d'], '--expires 90d is longer than JWT_MAX_AGE_SECONDS (2592000 s), after which the server refuses the token: choose a shorter lifetime.'],
    [['--nope'], expect.stringMatching(/^usage: npm run token/)],
    [[], expect.stringMatching(/^usage: npm run token/)],
  ])('npm run token -- %j', async (args, line) => {
    const { code, stdout, stderr } = await npmRun('token', args).exited;
    expect(code).toBe(2);
    expect(stderr.trim().split('\n')).toEqual([line]);
    expect(stdout + stderr).not.toMatch(STACK_FRAME);
  });

  it('npm run token -- alice --expires 2h prints a token the server accepts', async () => {
    const { code, stdout } = await npmRun('token', ['alice', '--expires', '2h']).exited;
    expect(code).toBe(0);
    expect((await fetch(`${t.url}/rooms/`, { headers: { authorization: `Bearer ${stdout.trim()}` } })).status).toBe(200);
  });
});

describe('no token in a log line', () => {
  it('request URLs are logged (at debug) with ?token= redacted, for good and malformed paths alike', async () => {
    // The entry point itself, so SIGTERM reaches it rather than npm.
    const server = run(process.execPath, ['server/main.ts'], { PORT: '0', LOG_LEVEL: 'debug' });
    const baseUrl = await new Promise<string>((resolve, reject) => {
      server.child.stdout.on('data', () => {
        const match = /Parley serving on (http:\/\/[^\s"]+)/.exec(server.out.stdout);
        if (match) resolve(match[1]!);
      });
      void server.exited.then(({ code }) => reject(new Error(`exited ${code}: ${server.out.stderr}`)));
    });
    const token = await t.token('alice');
    expect((await fetch(`${baseUrl}/rooms/?token=${token}`)).status).toBe(200);
    expect((await fetch(`${baseUrl}/%E0%A4%A/messages/?token=${token}`)).status).toBe(404);
    expect(await upgradeStatus(baseUrl, `/ws/chat/alice/bob/?token=${token}`)).toBe(101);
    server.child.kill('SIGTERM');
    const { code, stdout } = await server.exited;
    expect(code).toBe(0);
    expect(stdout).toContain('token=[redacted]');
    expect(stdout).not.toContain(token.split('.')[2]!);
  });
});

describe('README', () => {
  it('examples take the base URL from $BASE, and no link leaves the repository', async () => {
    const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toMatch(/^BASE=http:\/\/127\.0\.0\.1:3000$/m);
    const shell = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
    expect(shell).not.toMatch(/(localhost|127\.0\.0\.1):3000\/|:3000\/\S/);
    for (const [, target] of readme.matchAll(/\]\(([^)]+)\)/g)) {
      if (/^(https?:|#)/.test(target!)) continue;
      expect(target, 'a link inside the repository').not.toMatch(/^\.\.\//);
      await expect(readFile(new URL(`../../${target}`, import.meta.url)), target).resolves.toBeDefined();
    }
    expect(readme).not.toContain('../shared');
  });
});
