import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from '../../server/infra/db/postgres-server.ts';

/** Whether a `nats-server` binary is on PATH; tests that need one say so plainly when it is not. */
export const hasNatsServer = spawnSync('nats-server', ['--version']).status === 0;

export interface TestNats {
  url: string;
  port: number;
  /** Stops the server (SIGKILL: clients see the connection drop, not a lame-duck shutdown). */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
  /** Starts it again on the same port; core NATS keeps nothing, so it comes back empty. */
  start(): Promise<void>;
}

/** A NATS server of the test's own on a free port, so the test can stop and start it. */
export async function startTestNats(): Promise<TestNats> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      proc.stderr!.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('Server is ready')) resolve();
      });
      proc.once('exit', (code) => reject(new Error(`nats-server exited ${code}: ${out}`)));
    });
    proc.stderr!.resume();
  };
  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    proc.kill('SIGKILL');
    await once(proc, 'exit');
  };
  await start();
  return { url: `nats://127.0.0.1:${port}`, port, stop, [Symbol.asyncDispose]: stop, start };
}
