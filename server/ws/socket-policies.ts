import type { WebSocket } from 'ws';
import { ERROR_MAP } from '../errors/map.ts';

// Policies both WebSocket surfaces (tRPC and legacy ws/chat) apply to their sockets.

// setTimeout fires at once for delays above 2^31-1 ms; longer sessions are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Closes a WebSocket when the token it authenticated with expires (4501, TOKEN_EXPIRED): a
 * socket must not outlive its credentials. Clients reconnect with a fresh token.
 */
export function closeAtExpiry(socket: WebSocket, expiresAt: number | undefined) {
  if (expiresAt === undefined) return;
  let timer: NodeJS.Timeout;
  const arm = () => {
    const left = expiresAt - Date.now();
    timer = setTimeout(left > MAX_TIMER_MS ? arm : () => socket.close(ERROR_MAP.TOKEN_EXPIRED.wsClose, 'token expired'), Math.min(Math.max(left, 0), MAX_TIMER_MS));
  };
  arm();
  socket.once('close', () => clearTimeout(timer));
}

/**
 * Closes a socket whose reader has fallen more than `maxBufferedBytes` behind (4001,
 * SLOW_CONSUMER) and says so; the client reconnects and resumes from its last event id. Neither
 * `ws` nor tRPC applies backpressure to sends, so without this a stalled reader grows the heap.
 */
export function closeIfSlow(socket: WebSocket, maxBufferedBytes: number): boolean {
  if (socket.bufferedAmount <= maxBufferedBytes) return false;
  socket.close(ERROR_MAP.SLOW_CONSUMER.wsClose, 'slow consumer');
  return true;
}
