import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));

/** The hard open-files limit: containers often cap it below what 20k sockets need, so callers size to it. */
export function hardFileLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const hard = line?.trim().split(/\s{2,}/)[2];
    return hard === 'unlimited' ? 1_048_576 : Number(hard) || 1024;
  } catch {
    return 1024;
  }
}

/**
 * Starts `node <script>` with an IPC channel and the open-files limit raised to the hard limit;
 * `exec` keeps the pid, so /proc/<pid> describes the node process itself.
 */
export function spawnNode(script: string, opts: { env?: Record<string, string>; nodeArgs?: string[] } = {}): ChildProcess {
  const args = [...(opts.nodeArgs ?? []), script];
  const child = spawn('bash', ['-c', `ulimit -n ${hardFileLimit()} && exec "$0" "$@"`, process.execPath, ...args], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...opts.env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  // A message to a child that has just gone (killed by a time limit, say) is an 'error' event,
  // which would end this process unhandled; its exit tells the caller what happened.
  child.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ERR_IPC_CHANNEL_CLOSED') console.error(`bench: ${script}:`, err);
  });
  return child;
}

const children = new Set<ChildProcess>();

/** Kills every child this process started (they are ours by pid), e.g. on failure or SIGINT. */
export function killChildren(signal: NodeJS.Signals = 'SIGKILL') {
  for (const child of children) if (child.exitCode === null) child.kill(signal);
}

/** The next IPC message from `child` satisfying `match`, or a rejection on exit or timeout. */
export function nextMessage<T>(child: ChildProcess, match: (msg: any) => boolean, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (msg: any) => {
      if (msg?.type === 'error') {
        cleanup();
        reject(new Error(`${what}: ${msg.error}`));
      } else if (match(msg)) {
        cleanup();
        resolve(msg as T);
      }
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`${what}: child exited with ${code}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Resident set size of a process in bytes, read from /proc so the sampler adds no load to it. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** User+system CPU time of a process in ms. */
export function cpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return 0;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the peak. */
export function rssSampler(pid: number, everyMs = 10) {
  let peak = rssBytes(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), everyMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssBytes(pid));
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CPU time the whole machine has spent (user, nice, system, irq, softirq) from /proc/stat, in ms. */
export function machineCpuMs(): number {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/);
  const [user, nice, system, , , irq, softirq] = fields.map(Number);
  // In clock ticks of 10 ms (USER_HZ).
  return (user! + nice! + system! + irq! + softirq!) * 10;
}

/**
 * CPU time of every PostgreSQL process, ms: rounds run one at a time, so over a round it is that
 * round's server's statements (and the bench's few). A backend that exits within the span is missed.
 */
export function postgresCpuMs() {
  let sum = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres')) sum += cpuMs(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return sum;
}
