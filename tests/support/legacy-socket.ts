import { vi } from 'vitest';
import WebSocket from 'ws';
import type { LegacyServerFrame } from '../../contracts/index.ts';

export interface LegacySocket {
  ws: WebSocket;
  frames: LegacyServerFrame[];
  send(frame: unknown): void;
  /** Resolves with the first received frame (from `from` on) matching `match`. */
  waitFor(match: (f: LegacyServerFrame) => boolean, from?: number): Promise<LegacyServerFrame>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
  /** Stops reading the TCP socket, as a stuck client would: nothing sent to it is seen or answered. */
  pauseReading(): void;
}

const wsUrl = (baseUrl: string, path: string) => baseUrl.replace(/^http/, 'ws') + path;

/** Opens `ws/chat/<userId>/<otherUserId>/` like a legacy client (token in `?token=`). */
export async function openLegacySocket(baseUrl: string, userId: string, otherUserId: string, token: string, options: WebSocket.ClientOptions = {}): Promise<LegacySocket> {
  const ws = new WebSocket(wsUrl(baseUrl, `/ws/chat/${userId}/${otherUserId}/?token=${encodeURIComponent(token)}`), options);
  const frames: LegacyServerFrame[] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as LegacyServerFrame));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
    waitFor: (match, from = 0) =>
      vi.waitFor(
        () => {
          const found = frames.slice(from).find(match);
          if (!found) throw new Error(`no matching frame among ${JSON.stringify(frames.slice(from)).slice(0, 500)}`);
          return found;
        },
        { timeout: 10_000, interval: 10 },
      ),
    closed,
    close: () => ws.close(),
    pauseReading: () => (ws as unknown as { _socket: { pause(): void } })._socket.pause(),
  };
}

/** The HTTP status an upgrade was refused with, or 101 if it was accepted. */
export function upgradeStatus(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(baseUrl, path), { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (err) => (err.message.includes('Unexpected server response') ? undefined : reject(err)));
  });
}
