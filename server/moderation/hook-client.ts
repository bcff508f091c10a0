import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { ModerationVerdict, type ModerationRequest } from '../../contracts/index.ts';

export interface HookClient {
  /** The hook's verdict; throws when it does not answer within the timeout (waiting for a free call included) or answers anything else. */
  ask(candidate: ModerationRequest): Promise<ModerationVerdict>;
  close(): void;
}

export interface HookOptions {
  url: string;
  secret: string | undefined;
  timeoutMs: number;
  /** Calls in flight at once, all rooms together. */
  concurrency: number;
  /** Calls in flight at once for one room; the rest of a room's calls wait for its own, never for other rooms'. */
  perRoom?: number;
}

/** The longest answer read: a verdict is small; a hook sending more is broken. */
const MAX_ANSWER_BYTES = 64 * 1024;

export class HookTimeout extends Error {
  override name = 'HookTimeout';
}

/** `sha256=<hex>` over `<timestamp>.<body>`: the timestamp is signed so a captured request cannot be replayed later. */
export function signHookRequest(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * The moderation hook over HTTP with kept-alive connections. A hook that hangs must not hold the
 * sends of other rooms: each call has its own deadline, at most `concurrency` calls are in flight,
 * and one room holds at most `perRoom` of them, so a room whose every message hangs the hook (or
 * a flood into one room) leaves the other slots to the other rooms. Waiting for a slot counts
 * against the call's deadline: a send never waits longer than the timeout in all.
 */
export function createHookClient({ url, secret, timeoutMs, concurrency, perRoom = Math.max(1, Math.ceil(concurrency / 8)) }: HookOptions): HookClient {
  const target = new URL(url);
  const transport = target.protocol === 'https:' ? https : http;
  const agent = new transport.Agent({ keepAlive: true, maxSockets: concurrency });
  let active = 0;
  const activeByRoom = new Map<string, number>();
  const waiting: Array<{ room: string; grant(): void }> = [];

  function take(room: string) {
    active++;
    activeByRoom.set(room, (activeByRoom.get(room) ?? 0) + 1);
  }

  function give(room: string) {
    active--;
    const n = activeByRoom.get(room)! - 1;
    if (n) activeByRoom.set(room, n);
    else activeByRoom.delete(room);
    // First come first served among the rooms that may run now.
    for (let i = 0; i < waiting.length && active < concurrency; ) {
      const w = waiting[i]!;
      if ((activeByRoom.get(w.room) ?? 0) >= perRoom) i++;
      else {
        waiting.splice(i, 1);
        take(w.room);
        w.grant();
      }
    }
  }

  function slot(room: string, signal: AbortSignal): Promise<void> {
    if (active < concurrency && (activeByRoom.get(room) ?? 0) < perRoom) {
      take(room);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        room,
        grant() {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(new HookTimeout(`No free moderation call within ${timeoutMs} ms.`));
      };
      waiting.push(waiter);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  function post(body: string, signal: AbortSignal): Promise<unknown> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    if (secret !== undefined) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      headers['x-parley-timestamp'] = timestamp;
      headers['x-parley-signature'] = signHookRequest(secret, timestamp, body);
    }
    return new Promise((resolve, reject) => {
      const req = transport.request(target, { method: 'POST', agent, headers, signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`The moderation hook answered more than ${MAX_ANSWER_BYTES} bytes.`));
          else chunks.push(chunk);
        });
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode > 299) return reject(new Error(`The moderation hook answered HTTP ${res.statusCode}.`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch {
            reject(new Error('The moderation hook answered something that is not JSON.'));
          }
        });
      });
      req.on('error', (err) => reject(signal.aborted ? new HookTimeout(`The moderation hook did not answer within ${timeoutMs} ms.`) : err));
      req.end(body);
    });
  }

  return {
    async ask(candidate) {
      const signal = AbortSignal.timeout(timeoutMs);
      await slot(candidate.room, signal);
      try {
        const answer = await post(JSON.stringify(candidate), signal);
        const verdict = ModerationVerdict.safeParse(answer);
        if (!verdict.success) throw new Error(`The moderation hook's answer is no verdict: ${verdict.error.issues[0]?.message}`);
        return verdict.data;
      } finally {
        give(candidate.room);
      }
    },
    close: () => agent.destroy(),
  };
}
