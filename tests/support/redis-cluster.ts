import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../server/infra/db/postgres-server.ts';
import { hasRedisServer } from './redis-server.ts';
import { tempDataDir } from './temp-dir.ts';

/** Sharded pub/sub needs Redis 7; `redis-cli --cluster create` builds the cluster. */
export const hasRedisCluster = hasRedisServer && spawnSync('redis-cli', ['--version']).status === 0 && / v=([7-9]|\d\d)\./.test(spawnSync('redis-server', ['--version']).stdout?.toString() ?? '');

export interface TestRedisCluster {
  /** `host:port,...` of every node, as REDIS_CLUSTER_NODES takes them. */
  nodes: string;
  /** The ports of the nodes not killed. */
  livePorts(): number[];
  /** The port of the master serving `key`'s slot now. */
  masterOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port`; resolves once its replica has taken over and the cluster is whole. */
  killMaster(port: number): Promise<void>;
  /** SIGKILLs the node on `port` and resolves once a live node says the cluster is down (a master without a replica: until it is back). */
  downMaster(port: number): Promise<void>;
  /** Starts a node taken down again; resolves once the cluster is whole. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A Redis Cluster of the test's own: 3 masters, with a replica each unless `replicas` is false
 * (half the processes, for tests that kill no master), on free ports, without persistence. A short node timeout makes a replica take over within a couple of seconds.
 */
export async function startTestRedisCluster({ nodeTimeoutMs = 1_000, replicas = true }: { nodeTimeoutMs?: number; replicas?: boolean } = {}): Promise<TestRedisCluster> {
  const dir = await tempDataDir('parley-redis-cluster-');
  const ports: number[] = [];
  const children = new Map<number, ChildProcess>();
  const busPorts = new Map<number, number>();
  /** Starts the node of `port`, or starts it again (same ports, same cluster config file: it rejoins with its slots). */
  const startNode = async (port: number) => {
    const busPort = busPorts.get(port) ?? (await freePort());
    busPorts.set(port, busPort);
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', String(nodeTimeoutMs), '--dir', dir,
        // A replica fails over even when it had not finished its first sync: the cluster here is seconds old.
        '--cluster-replica-validity-factor', '0'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.set(port, proc);
    let out = '';
    await new Promise<void>((resolve, reject) => {
      proc.stdout!.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('Ready to accept connections')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`redis-server exited ${code}: ${out}`)));
    });
    proc.stdout!.resume();
  };
  const stop = async () => {
    await Promise.all(
      [...children.values()].map(async (proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.kill('SIGKILL');
        await once(proc, 'exit');
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const ask = async <T>(port: number, fn: (r: Redis) => Promise<T>) => {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  const live = () => [...children.entries()].filter(([, p]) => p.exitCode === null && p.signalCode === null).map(([port]) => port);
  /** Every live node sees the cluster as whole, with three masters among the live nodes. */
  const whole = async (deadline: number) => {
    for (;;) {
      const ok = await Promise.all(
        live().map((port) =>
          ask(port, async (r) => {
            const info = String(await r.call('CLUSTER', 'INFO'));
            const nodes = String(await r.call('CLUSTER', 'NODES'));
            // <id> <addr> <flags> <master> <ping> <pong> <epoch> <link> <slots...>
            const masters = nodes
              .split('\n')
              .map((line) => line.split(' '))
              .filter((f) => f.length > 8 && f[2]!.split(',').includes('master') && !f[2]!.includes('fail') && f[7] === 'connected').length;
            return info.includes('cluster_state:ok') && masters === 3;
          }).catch(() => false),
        ),
      );
      if (ok.every(Boolean)) return;
      if (Date.now() > deadline) throw new Error('the test Redis Cluster did not become whole');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  try {
    for (let i = 0; i < (replicas ? 6 : 3); i++) ports.push(await freePort());
    await Promise.all(ports.map(startNode));
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', replicas ? '1' : '0', '--cluster-yes'], { encoding: 'utf8' });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await whole(Date.now() + 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes: ports.map((p) => `127.0.0.1:${p}`).join(','),
    livePorts: live,
    async masterOf(key) {
      return ask(live()[0]!, async (r) => {
        const slot = Number(await r.call('CLUSTER', 'KEYSLOT', key));
        const slots = (await r.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
        const range = slots.find(([from, to]) => from <= slot && slot <= to)!;
        return Number(range[2][1]);
      });
    },
    async killMaster(port) {
      const proc = children.get(port)!;
      proc.kill('SIGKILL');
      await once(proc, 'exit');
      await whole(Date.now() + 30_000);
    },
    async downMaster(port) {
      const proc = children.get(port)!;
      proc.kill('SIGKILL');
      await once(proc, 'exit');
      for (const deadline = Date.now() + 30_000; ; ) {
        if (await ask(live()[0]!, async (r) => String(await r.call('CLUSTER', 'INFO')).includes('cluster_state:fail')).catch(() => false)) return;
        if (Date.now() > deadline) throw new Error('the test Redis Cluster did not see its master down');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async restart(port) {
      await startNode(port);
      await whole(Date.now() + 30_000);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
