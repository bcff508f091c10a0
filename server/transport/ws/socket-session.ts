import type { WebSocket } from 'ws';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import type { UserSlots } from '../../infra/limits/user-slots.ts';
import type { BanView } from '../../admin/ban-view.ts';

/** The rules every WebSocket of both surfaces (tRPC and legacy ws/chat) lives by. */
export interface SocketRules {
  /** Bytes buffered for a reader before its socket is closed with 4001 (SLOW_CONSUMER). */
  maxBufferedBytes: number;
  /** Units of work (requests, frames) in progress before the socket stops reading. */
  maxInflight: number;
  /** Bytes of frames taken (`take`) and not yet worked through before the socket stops reading. */
  maxInflightBytes: number;
  /** Heartbeat interval; a socket that leaves two pings in a row unanswered is dropped. */
  pingMs: number;
}

export interface SocketSession {
  /**
   * Starts a unit of work. Reading pauses once `maxInflight` are in progress; frames already read
   * past twice that are refused (false): the caller answers them with RATE_LIMITED.
   */
  begin(): boolean;
  /**
   * Takes a frame already read, of `bytes`, which is worked through in turn: never refused (the
   * caller's protocol may have no answer for "too many"). Reading pauses while `maxInflight` frames
   * or `maxInflightBytes` are taken and not ended; what one read brought in is still taken whole.
   */
  take(bytes: number): void;
  /** Ends a unit of work, `bytes` the size it was taken with. */
  end(bytes?: number): void;
  /** Closes the socket with 4501 (TOKEN_EXPIRED) when the token it authenticated with expires. */
  expireAt(expiresAt: number | undefined): void;
  /** Aborted once the socket starts closing (by either side): queued work is dropped, subscriptions end. */
  readonly signal: AbortSignal;
}

// setTimeout fires at once for delays above 2^31-1 ms; longer sessions are re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Applies the socket rules. Neither `ws` nor tRPC applies backpressure: a reader that stops
 * reading, or a client that sends faster than we work, would grow the heap without bound. So
 * every write checks the send buffer first (every write: subscription events, query answers,
 * error frames alike), and reading pauses while too much work is in progress.
 */
export function startSocketSession(socket: WebSocket, rules: SocketRules): SocketSession {
  const closed = new AbortController();
  const timers = new Set<NodeJS.Timeout>();
  let inflight = 0;
  let inflightBytes = 0;
  const overLimit = () => inflight >= rules.maxInflight || inflightBytes >= rules.maxInflightBytes;

  // `close` fires only after the closing handshake (or its 30 s timeout); work must stop at its start.
  const rawClose = socket.close.bind(socket);
  socket.close = ((code?: number, reason?: string | Buffer) => {
    rawClose(code, reason);
    closed.abort();
    // A paused socket would never read the peer's close frame, and close only at ws's timeout.
    if (socket.isPaused) socket.resume();
  }) as WebSocket['close'];

  // Frames written in one tick (a burst of events, a replay) leave in one write, not one each.
  const tcp = (socket as unknown as { _socket: import('node:net').Socket })._socket;
  let corked = false;
  const uncork = () => {
    corked = false;
    tcp.uncork();
  };

  const rawSend = socket.send.bind(socket);
  // Patched on the instance, so tRPC's own writes obey the cap as well as ours.
  socket.send = ((data: Parameters<WebSocket['send']>[0], ...rest: unknown[]) => {
    if (socket.readyState !== socket.OPEN) return;
    if (socket.bufferedAmount > rules.maxBufferedBytes) {
      socket.close(ERROR_MAP.SLOW_CONSUMER.wsClose, 'slow consumer');
      return;
    }
    if (!corked) {
      corked = true;
      tcp.cork();
      process.nextTick(uncork);
    }
    (rawSend as (...args: unknown[]) => void)(data, ...rest);
  }) as WebSocket['send'];

  let alive = true;
  // While reading is paused a pong waits unread behind the frames being worked through: a peer
  // is judged on an interval during which it was read throughout.
  let unread = false;
  const pauseReading = () => {
    unread = true;
    socket.pause();
  };
  socket.on('pong', () => (alive = true));
  // Timers run before sockets are read: a tick that follows a stall of the process (GC, a long
  // synchronous burst, a busy machine) finds the peer's pong still unread. So a tick that came
  // late judges no one, and a peer is dropped only after two pings in a row went unanswered.
  let missed = 0;
  let lastTick = Date.now();
  const heartbeat = setInterval(() => {
    const now = Date.now();
    const late = now - lastTick > rules.pingMs * 1.5;
    lastTick = now;
    if (alive || unread) missed = 0;
    else if (!late && ++missed >= 2) return socket.terminate();
    alive = false;
    unread = socket.isPaused;
    socket.ping();
  }, rules.pingMs);
  timers.add(heartbeat);

  socket.once('close', () => {
    for (const timer of timers) clearTimeout(timer);
    closed.abort();
  });

  return {
    signal: closed.signal,
    begin() {
      if (closed.signal.aborted) return false;
      if (inflight >= rules.maxInflight * 2) return false;
      inflight++;
      if (overLimit() && !socket.isPaused) pauseReading();
      return true;
    },
    take(bytes) {
      inflight++;
      inflightBytes += bytes;
      if (overLimit() && !socket.isPaused && !closed.signal.aborted) pauseReading();
    },
    end(bytes = 0) {
      inflight--;
      inflightBytes -= bytes;
      if (!overLimit() && socket.isPaused && !closed.signal.aborted) socket.resume();
    },
    expireAt(expiresAt) {
      if (expiresAt === undefined || closed.signal.aborted) return;
      const arm = () => {
        const left = expiresAt - Date.now();
        const timer = setTimeout(left > MAX_TIMER_MS ? arm : () => socket.close(ERROR_MAP.TOKEN_EXPIRED.wsClose, 'token expired'), Math.min(Math.max(left, 0), MAX_TIMER_MS));
        timers.add(timer);
      };
      arm();
    },
  };
}

/**
 * Counts the socket toward its user's cap (both surfaces, this process) until it starts closing;
 * past the cap it is closed with 4029 (RATE_LIMITED: reconnect later) and false is returned. While
 * open, a ban (or erasure) of the user closes it, whichever instance it was made on.
 */
export function holdUserSocket({ socketSlots, admin }: { socketSlots: UserSlots; admin: { bans: { view: BanView } } }, socket: WebSocket, signal: AbortSignal, userId: string): boolean {
  const release = socketSlots.take(userId);
  if (!release) {
    socket.close(ERROR_MAP.RATE_LIMITED.wsClose, `at most ${socketSlots.max} sockets per user`);
    return false;
  }
  if (signal.aborted) return (release(), true);
  signal.addEventListener('abort', release, { once: true });
  const unwatch = admin.bans.view.watch(userId, (why) => socket.close(ERROR_MAP[why.code].wsClose, why.message.slice(0, 120)));
  signal.addEventListener('abort', unwatch, { once: true });
  return !signal.aborted;
}
