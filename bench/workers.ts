import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIR, nextMessage, spawnNode } from './proc.ts';

/** The load-worker's side of the channel. */
export interface Control {
  post(msg: object): void;
  /** The next command from the parent of the given type. */
  command<T>(type: string): Promise<T>;
}

/** A load-generator process running one task; it may report progress and take commands before its result. */
export interface Worker {
  child: ChildProcess;
  /** The next `{type}` message from the task. */
  next<T>(type: string, timeoutMs: number): Promise<T>;
  command(msg: object): void;
  result<T>(timeoutMs: number): Promise<T>;
}

export async function startWorker(task: string, params: unknown): Promise<Worker> {
  const child = spawnNode(join(BENCH_DIR, 'load-worker.ts'));
  const worker: Worker = {
    child,
    next: (type, timeoutMs) => nextMessage(child, (m) => m?.type === type, timeoutMs, `${task} worker (${type})`),
    command: (msg) => child.send(msg),
    async result<T>(timeoutMs: number) {
      const msg = await worker.next<{ result: T }>('result', timeoutMs);
      child.disconnect();
      return msg.result;
    },
  };
  await worker.next('booted', 30_000);
  child.send({ type: 'task', task, params });
  return worker;
}

/** Runs a task to completion in a fresh process. */
export async function runWorker<T>(task: string, params: unknown, timeoutMs: number): Promise<T> {
  return (await startWorker(task, params)).result<T>(timeoutMs);
}
