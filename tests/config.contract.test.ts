import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { signToken } from '../server/identity/sign-token.ts';
import { environment, ENV_VARIABLES, loadConfig } from '../server/infra/config/config.ts';
import { findMisspellings } from '../server/infra/config/config-typos.ts';
import { createTestDatabase, type TestDatabase } from './support/instance-process.ts';
import { runMain, servingUrl, type MainProcess } from './support/main-process.ts';
import { startServerProcess } from './support/server-process.ts';
import { tempDataDir, tempDir } from './support/temp-dir.ts';
import { TEST_SECRET } from './support/test-app.ts';

/** Unsets both kinds of keys, whatever this process's environment holds. */
const NO_KEYS = { JWT_SECRET: undefined, JWT_JWKS_URL: undefined };
const DATABASE_URL = 'postgres://127.0.0.1/parley';
const configError = (env: Record<string, string | undefined>) => {
  try {
    loadConfig(env);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
};

type Started = { url?: string; code?: number | null; main: MainProcess; warnings: () => string[] };

const it = test.extend<{
  $file: { db: TestDatabase; dir: string };
  /** Starts `npm start`'s entry point; resolves with its exit code, or its URL once it serves. */
  $test: { start: (env: Record<string, string | undefined>, cwd?: string) => Promise<Started> };
}>({
  db: [
    async ({}, use) => {
      await using db = await createTestDatabase('config_contract');
      await use(db);
    },
    { scope: 'file' },
  ],
  dir: [
    async ({}, use) => {
      await using dir = await tempDir('parley-config-');
      await use(dir.path);
    },
    { scope: 'file' },
  ],
  start: [
    async ({}, use) => {
      const started: MainProcess[] = [];
      await use(async (env, cwd) => {
        const main = runMain({ PORT: '0', LOG_LEVEL: 'info', ...env }, { cwd });
        started.push(main);
        const outcome: { url?: string; code?: number | null } = await servingUrl(main).then(
          (url) => ({ url }),
          async () => ({ code: await main.exited }),
        );
        return { ...outcome, main, warnings: () => warnLines(main.output()) };
      });
      for (const main of started) if (main.child.exitCode === null) main.child.kill('SIGKILL');
      await Promise.all(started.map((m) => m.exited));
    },
    { scope: 'test' },
  ],
});

const warnLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{') && JSON.parse(line).level === 40).map((line) => JSON.parse(line).msg as string);

describe('who mints tokens: without JWT_SECRET or JWT_JWKS_URL, only development mode on a loopback address', () => {
  it('nothing set: development mode on 127.0.0.1, tokens minted locally', () => {
    const config = loadConfig({});
    expect([config.env, config.host, config.tokens]).toEqual(['development', '127.0.0.1', 'dev']);
  });

  it.each(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LocalHost'])('HOST=%s is loopback: development mode', (host) => {
    expect(loadConfig({ HOST: host }).tokens).toBe('dev');
  });

  it.each(['test', 'production'])('NODE_ENV=%s without keys refuses to start, naming JWT_SECRET and JWT_JWKS_URL', (mode) => {
    expect(configError({ NODE_ENV: mode })).toBe(
      `Invalid configuration:\n  JWT_SECRET: required with NODE_ENV=${mode}: set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL; tokens are minted locally only in development`,
    );
  });

  it.each(['0.0.0.0', '::', '192.168.1.20', '::ffff:10.0.0.1', 'chat.example.com'])('HOST=%s without keys refuses to start, naming JWT_SECRET and JWT_JWKS_URL', (host) => {
    expect(configError({ HOST: host })).toBe(
      `Invalid configuration:\n  JWT_SECRET: required with HOST=${host}, which other machines can reach: set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL, or listen on HOST=127.0.0.1 to mint development tokens locally`,
    );
  });

  it('WORKERS=2 without keys refuses to start: development tokens are minted by a single process', () => {
    expect(configError({ WORKERS: '2', DATABASE_URL })).toBe(
      'Invalid configuration:\n  JWT_SECRET: required with WORKERS=2: set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL; development tokens are minted by a single process',
    );
  });

  it('with JWT_SECRET or JWT_JWKS_URL, any mode, address and worker count verifies tokens and mints none', () => {
    const deployed = { NODE_ENV: 'production', HOST: '0.0.0.0', WORKERS: '2', DATABASE_URL };
    expect(loadConfig({ ...deployed, JWT_SECRET: TEST_SECRET }).tokens).toBe('keys');
    expect(loadConfig({ ...deployed, JWT_JWKS_URL: 'https://idp.example/jwks.json' }).tokens).toBe('keys');
    expect(loadConfig({ JWT_SECRET: TEST_SECRET }).tokens).toBe('keys');
  });

  it('npm start with HOST=0.0.0.0 and no keys exits 1 before listening, saying to set JWT_SECRET or JWT_JWKS_URL', async ({ start, db, dir }) => {
    const { code, main } = await start({ NODE_ENV: 'development', HOST: '0.0.0.0', ...NO_KEYS, DATABASE_URL: db.url, DATA_DIR: dir });
    expect(code, main.output()).toBe(1);
    expect(main.output()).toContain('JWT_SECRET: required with HOST=0.0.0.0, which other machines can reach: set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL');
  });

  it('development mode: npm start logs one warn line that tokens are minted locally and where the secret is kept; the demo and npm run token mint tokens it accepts', async ({ dir }) => {
    await using server = await startServerProcess('config_dev', { NODE_ENV: 'development', HOST: '127.0.0.1', ...NO_KEYS, DATA_DIR: dir });
    expect(warnLines(server.output())).toEqual([
      `Development mode: tokens are minted locally for any user name (POST /demo/token, npm run token), signed with the generated secret kept in ${join(dir, 'dev-jwt-secret')}; set JWT_SECRET or JWT_JWKS_URL to accept only real tokens`,
    ]);
    const accepted = async (token: string) => (await fetch(`${server.url}/rooms/`, { headers: { authorization: `Bearer ${token}` } })).status;
    const minted = await fetch(`${server.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"user":"alice"}' });
    expect(await accepted(((await minted.json()) as { token: string }).token)).toBe(200);

    const cli = spawn(process.execPath, ['server/cli/token.ts', 'bob', '--expires', '1h'], {
      env: { ...process.env, NODE_ENV: 'development', HOST: '127.0.0.1', DATABASE_URL: server.databaseUrl, DATA_DIR: dir, ...NO_KEYS },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let token = '';
    cli.stdout.on('data', (d) => (token += d));
    expect((await once(cli, 'exit'))[0]).toBe(0);
    expect(await accepted(token.trim())).toBe(200);
  });
});

describe('a Parley variable set but blank is an error naming it', () => {
  it.each(['', ' ', '\t'])('JWT_SECRET=%j is an error, not the generated development secret', (blank) => {
    expect(configError({ JWT_SECRET: blank })).toBe('Invalid configuration:\n  JWT_SECRET: set but blank: give it a value, or remove it to use the default');
  });

  it('every Parley variable, each named on its own line', () => {
    const message = configError(Object.fromEntries(ENV_VARIABLES.map((name) => [name, ' '])));
    expect(message.split('\n').slice(1).sort()).toEqual(ENV_VARIABLES.map((name) => `  ${name}: set but blank: give it a value, or remove it to use the default`).sort());
    expect(ENV_VARIABLES).toEqual(expect.arrayContaining(['NODE_ENV', 'HOST', 'PORT', 'DATABASE_URL', 'JWT_SECRET', 'JWT_JWKS_URL', 'WORKERS', 'LOG_LEVEL']));
  });

  it('names every bad variable at once, blank or invalid', () => {
    expect(configError({ PORT: 'abc', JWT_SECRET: 'short', HOST: '' })).toMatch(/HOST: set but blank[\s\S]*PORT[\s\S]*JWT_SECRET: must be at least 32 characters/);
  });
});

describe('misspelt variables are named at start, with the one meant', () => {
  it('DATABSE_URL, JWT_SECERT and PROT are taken for DATABASE_URL, JWT_SECRET and PORT', () => {
    const env = { DATABSE_URL: DATABASE_URL, JWT_SECERT: TEST_SECRET, PROT: '4000', PORT: '3000', JWT_SECRET: TEST_SECRET };
    const expected = [
      { name: 'DATABSE_URL', meant: ['DATABASE_URL'] },
      { name: 'JWT_SECERT', meant: ['JWT_SECRET'] },
      { name: 'PROT', meant: ['PORT'] },
    ];
    expect(findMisspellings(env, ENV_VARIABLES)).toEqual(expected);
    expect(loadConfig(env).misspellings).toEqual(expected);
  });

  it('a start refused for a missing variable also names the misspelt one that was probably meant', () => {
    expect(configError({ NODE_ENV: 'production', JWT_SECERT: TEST_SECRET })).toBe(
      'Invalid configuration:\n' +
        '  JWT_SECRET: required with NODE_ENV=production: set JWT_SECRET (at least 32 characters) or JWT_JWKS_URL; tokens are minted locally only in development\n' +
        '  JWT_SECERT is not a Parley variable and is ignored: did you mean JWT_SECRET?',
    );
  });

  it('one added, dropped or replaced character counts; two edits, other casing and the usual variables of shells, CI and containers do not', () => {
    const found = (names: string[]) => findMisspellings(Object.fromEntries(names.map((n) => [n, 'x'])), ENV_VARIABLES).map((m) => m.name);
    expect(found(['PORTT', 'HST', 'WORKER', 'LOG_LEVLE', 'REDIS_URI', 'JWT_ISUER'])).toEqual(['HST', 'JWT_ISUER', 'LOG_LEVLE', 'PORTT', 'REDIS_URI', 'WORKER']);
    const usual = [
      ...['HOME', 'PATH', 'TERM', 'USER', 'SHELL', 'LANG', 'PWD', 'OLDPWD', 'HOSTNAME', 'LOGNAME', 'MAIL', 'EDITOR', 'TMPDIR', 'TZ', 'DISPLAY', 'SHLVL', 'LC_ALL'],
      ...['CI', 'DEBUG', 'NO_COLOR', 'FORCE_COLOR', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'INIT_CWD', 'GITHUB_ACTIONS', 'RUNNER_OS', 'VITEST'],
      ...['NODE_OPTIONS', 'NODE_PATH', 'NODE_VERSION', 'YARN_VERSION', 'NODE_EXTRA_CA_CERTS', 'PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'PGPASSWORD'],
      ...['DB_HOST', 'DB_PORT', 'DB_USER', 'REDIS_HOST', 'REDIS_PORT', 'KUBERNETES_SERVICE_HOST', 'KUBERNETES_PORT'],
      ...['port', 'Port', 'jwt_secret', 'DATABSE_URLL', 'JWTSECERT'],
    ];
    expect(found(usual)).toEqual([]);
  });

  it('npm start reads .env from its working directory, the environment wins over it, and each misspelt variable gets one warn line', async ({ start, db }) => {
    const fileSecret = 'a-secret-from-the-env-file-0123456789abcdef';
    const cwd = await tempDataDir('parley-dotenv-');
    await writeFile(join(cwd, '.env'), [`DATABASE_URL=${db.url}`, `JWT_SECRET=${fileSecret}`, 'DATABSE_URL=postgres://typo/parley', `JWT_SECERT=${fileSecret}`, 'PROT=4000', ''].join('\n'));
    try {
      const { url, main, warnings } = await start({ DATABASE_URL: undefined, JWT_SECRET: TEST_SECRET, JWT_JWKS_URL: undefined }, cwd);
      expect(url, main.output()).toBeDefined();
      expect(main.output()).toContain('PostgreSQL at DATABASE_URL');
      expect(warnings()).toEqual([
        'DATABSE_URL is not a Parley variable and is ignored: did you mean DATABASE_URL?',
        'JWT_SECERT is not a Parley variable and is ignored: did you mean JWT_SECRET?',
        'PROT is not a Parley variable and is ignored: did you mean PORT?',
      ]);
      const status = async (secret: string) => (await fetch(`${url}/rooms/`, { headers: { authorization: `Bearer ${await signToken({ secret, userId: 'alice' })}` } })).status;
      expect([await status(TEST_SECRET), await status(fileSecret)]).toEqual([200, 401]);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });

  it('a .env line that sets a Parley variable blank is the blank-variable error: npm start exits 1 naming it', async ({ start, db }) => {
    const cwd = await tempDataDir('parley-dotenv-blank-');
    await writeFile(join(cwd, '.env'), 'JWT_SECRET=\n');
    expect(environment(cwd, { PORT: '0' })).toEqual({ JWT_SECRET: '', PORT: '0' });
    try {
      const { code, main } = await start({ NODE_ENV: 'development', ...NO_KEYS, DATABASE_URL: db.url, DATA_DIR: cwd }, cwd);
      expect(code, main.output()).toBe(1);
      expect(main.output()).toContain('JWT_SECRET: set but blank: give it a value, or remove it to use the default');
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

describe('the fan-out engine', () => {
  const keys = { JWT_SECRET: TEST_SECRET, DATABASE_URL };
  it('auto keeps its choice (Redis with REDIS_URL, else PostgreSQL) whatever else is configured; nats and redis-cluster are chosen by name and need their servers', () => {
    expect(loadConfig({ ...keys, NATS_URL: 'nats://127.0.0.1:4222' }).fanout).toBe('postgres');
    expect(loadConfig({ ...keys, REDIS_URL: 'redis://127.0.0.1:6379', NATS_URL: 'nats://127.0.0.1:4222' }).fanout).toBe('redis');
    const nats = loadConfig({ ...keys, FANOUT: 'nats', NATS_URL: 'nats://a:4222, nats://b:4222' });
    expect([nats.fanout, nats.natsServers]).toEqual(['nats', ['nats://a:4222', 'nats://b:4222']]);
    expect(configError({ ...keys, FANOUT: 'nats' })).toMatch(/FANOUT: nats needs NATS_URL/);
    expect(configError({ ...keys, FANOUT: 'nats', NATS_URL: 'http://a:4222' })).toMatch(/NATS_URL/);
    expect(loadConfig({ ...keys, REDIS_CLUSTER_NODES: '10.0.0.1:7000' }).fanout).toBe('postgres');
    expect(loadConfig({ ...keys, FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: 'r1:7000,r2:7001' }).redisClusterNodes).toEqual(['r1:7000', 'r2:7001']);
    expect(configError({ ...keys, FANOUT: 'redis-cluster' })).toMatch(/FANOUT: redis-cluster needs REDIS_CLUSTER_NODES/);
    expect(configError({ ...keys, FANOUT: 'redis-cluster', REDIS_CLUSTER_NODES: 'redis://r1:7000' })).toMatch(/REDIS_CLUSTER_NODES.*: must be host:port/);
  });
});

describe('a transaction-mode pooler in front of the database', () => {
  it('DATABASE_DIRECT_URL is DATABASE_URL unless set, and needs it', () => {
    const keys = { JWT_SECRET: TEST_SECRET };
    expect(loadConfig({ ...keys, DATABASE_URL }).databaseDirectUrl).toBe(DATABASE_URL);
    expect(loadConfig({ ...keys, DATABASE_URL: 'postgres://127.0.0.1:6432/parley', DATABASE_DIRECT_URL: DATABASE_URL }).databaseDirectUrl).toBe(DATABASE_URL);
    expect(configError({ ...keys, DATABASE_DIRECT_URL: DATABASE_URL })).toMatch(/DATABASE_DIRECT_URL: needs DATABASE_URL/);
  });
});

describe('read replicas', () => {
  const keys = { JWT_SECRET: TEST_SECRET, DATABASE_URL };
  it('DATABASE_REPLICA_URLS is a comma-separated list of postgres:// URLs, needs DATABASE_URL, and a bad entry is named by position', () => {
    expect(loadConfig(keys).databaseReplicaUrls).toEqual([]);
    expect(loadConfig({ ...keys, DATABASE_REPLICA_URLS: 'postgres://r1/parley, postgresql://r2:5433/parley' }).databaseReplicaUrls).toEqual(['postgres://r1/parley', 'postgresql://r2:5433/parley']);
    expect(configError({ ...keys, DATABASE_REPLICA_URLS: 'postgres://r1/parley,http://r2/parley' })).toMatch(/DATABASE_REPLICA_URLS: entry 2 of 2 is not a postgres:\/\/ URL/);
    expect(configError({ ...keys, DATABASE_REPLICA_URLS: 'postgres://r1/parley,' })).toMatch(/DATABASE_REPLICA_URLS: entry 2 of 2 is not/);
    expect(configError({ ...keys, DATABASE_REPLICA_URLS: 'postgres://user:secret@r1/parley,r2' })).not.toContain('secret');
    expect(configError({ JWT_SECRET: TEST_SECRET, DATABASE_REPLICA_URLS: 'postgres://r1/parley' })).toMatch(/DATABASE_REPLICA_URLS: needs DATABASE_URL/);
  });
});
