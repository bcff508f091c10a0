/**
 * Client connections each server process holds, from /proc: established TCP sockets whose local
 * port is the server's, matched to the processes by socket inode. Under `WORKERS` the primary
 * accepts and hands each connection to a worker, so the worker holds it.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const ESTABLISHED = '01';

function serverSideInodes(port: number): Set<string> {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1]!.endsWith(suffix) && f[3] === ESTABLISHED) inodes.add(f[9]!);
    }
  }
  return inodes;
}

function socketInodes(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
      try {
        const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
        return link.startsWith('socket:[') ? [link.slice(8, -1)] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/** For each pid, how many client connections to `port` it holds now. */
export function clientConnections(pids: number[], port: number): number[] {
  const inodes = serverSideInodes(port);
  return pids.map((pid) => socketInodes(pid).filter((inode) => inodes.has(inode)).length);
}
