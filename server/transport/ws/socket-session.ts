import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyRequest } from 'fastify';
import { WebSocket } from 'ws';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import type { UserSlots } from '../../infra/limits/user-slots.ts';
import type { BanView } from '../../admin/ban-view.ts';
import type { FeedSignal } from '../../messages/room-feed.ts';

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
  /** The socket it rules. */
  readonly socket: WebSocket;
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
  /** Aborted once the socket starts closing (by either side): queued work is dropped, subscriptions end. Made at first use. */
  readonly signal: AbortSignal;
  /** The socket started closing (by either side); unlike `signal`, costs nothing. */
  readonly closed: boolean;
  /** The socket's closing as a feed hears it, without an AbortSignal: its listeners are called with the releases (see atClose). */
  readonly closeSignal: FeedSignal;
  /**
   * Hands the socket's frames to `peer.message` and, once it has closed, calls `peer.closed`
   * (through SessionSocket.emit), so a socket holds no closures of its surface.
   */
  serve(peer: SocketPeer): void;
  /**
   * Calls `release` once the socket starts closing (at once if it has). What the socket holds for
   * its whole life goes here rather than on the signal: a listener there costs several times more.
   */
  atClose(release: () => void): void;
}

/** What a surface does with a socket's frames, and at its end. */
export interface SocketPeer {
  message(data: Buffer, isBinary: boolean): void;
  /** The socket closed (its 'close' event: after the closing handshake), after its session's releases ran. */
  closed?(): void;
}

// setTimeout fires at once for delays above 2^31-1 ms; a later expiry is re-armed.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The WebSocket class the server creates (ws's `WebSocket` option): writes and closes obey the
 * socket's session through the prototype, so tRPC's own writes obey the cap as well as ours, and
 * a socket carries no per-instance wrappers.
 */
export class SessionSocket extends WebSocket {
  session: Session | undefined = undefined;

  override send(data: Parameters<WebSocket['send']>[0], ...rest: unknown[]): void {
    const session = this.session;
    if (session) {
      if (this.readyState !== this.OPEN) return;
      if (this.bufferedAmount > session.rules.maxBufferedBytes) {
        this.close(ERROR_MAP.SLOW_CONSUMER.wsClose, 'slow consumer');
        return;
      }
      session.cork();
    }
    (super.send as (...args: unknown[]) => void)(data, ...rest);
  }

  /**
   * A session's socket hands its frames, pongs and close to it here rather than through listeners
   * of its own: ws's server and the metrics already listen for 'close', and a third listener grew
   * the array holding them to room for 19, kept for the socket's whole life.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const session = this.session;
    if (session) {
      if (event === 'message') session.peer?.message(args[0] as Buffer, args[1] as boolean);
      else if (event === 'pong') session.alive = true;
      else if (event === 'close') sessionClosed(session);
    }
    return super.emit(event, ...args);
  }

  // `close` fires only after the closing handshake (or its 30 s timeout); work must stop at its start.
  override close(code?: number, reason?: string | Buffer): void {
    super.close(code, reason);
    const session = this.session;
    if (!session) return;
    session.closing();
    // A paused socket would never read the peer's close frame, and close only at ws's timeout.
    if (this.isPaused) this.resume();
  }
}

function onError(this: SessionSocket, err: Error) {
  const session = this.session!;
  logSocketError(session.log, err, session.reqId);
  this.terminate();
}

/** How a failed WebSocket is logged: oversized or malformed frames and dropped connections are the client's doing. */
export function logSocketError(log: FastifyBaseLogger, err: Error, reqId?: string) {
  const clientFault = /^(WS_ERR_|ECONNRESET|EPIPE)/.test((err as NodeJS.ErrnoException).code ?? '');
  if (clientFault) log.info({ reqId, code: (err as NodeJS.ErrnoException).code }, 'WebSocket closed on a client error');
  else log.error({ reqId, err }, 'WebSocket handler failed');
}

function sessionClosed(session: Session) {
  session.heartbeat.remove(session);
  expiries.remove(session);
  session.closing();
  session.peer?.closed?.();
}

function uncork(session: Session) {
  session.corked = false;
  session.tcp.uncork();
}

/**
 * Applies the socket rules. Neither `ws` nor tRPC applies backpressure: a reader that stops
 * reading, or a client that sends faster than we work, would grow the heap without bound. So
 * every write checks the send buffer first (every write: subscription events, query answers,
 * error frames alike), and reading pauses while too much work is in progress.
 *
 * One object per socket, its methods shared: tens of thousands of idle sockets each holding a
 * set of closures and timers cost more memory than the sockets themselves.
 */
class Session implements SocketSession {
  // Most sockets' signals are never asked for (a tRPC socket's calls carry their own): an
  // AbortSignal, with its listener maps, weighs more than the rest of the session.
  #controller: AbortController | undefined;
  closed = false;
  peer: SocketPeer | undefined;
  readonly tcp: Socket;
  inflight = 0;
  inflightBytes = 0;
  corked = false;
  // Heartbeat: the peer answered the last ping; reading was paused during the last interval; pings missed in a row.
  alive = true;
  unread = false;
  missed = 0;
  readonly heartbeat: Heartbeat;
  prevBeat: Session | null = null;
  nextBeat: Session | null = null;
  slot = -1;
  expiresAt = Infinity;
  expiryIndex = -1;

  readonly socket: SessionSocket;
  readonly rules: SocketRules;
  readonly log: FastifyBaseLogger;
  readonly reqId: string;

  constructor(socket: SessionSocket, rules: SocketRules, log: FastifyBaseLogger, reqId: string) {
    this.socket = socket;
    this.rules = rules;
    this.log = log;
    this.reqId = reqId;
    this.tcp = (socket as unknown as { _socket: Socket })._socket;
    this.heartbeat = heartbeatFor(rules.pingMs);
  }

  get signal() {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.closed) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  serve(peer: SocketPeer) {
    this.peer = peer;
  }

  #releases: Array<() => void> | undefined;

  closing() {
    if (this.closed) return;
    this.closed = true;
    this.#controller?.abort();
    const releases = this.#releases;
    this.#releases = undefined;
    if (releases) for (const release of releases) release();
  }

  atClose(release: () => void) {
    if (this.closed) release();
    else this.#keep(release);
  }

  get closeSignal(): FeedSignal {
    return this;
  }

  get aborted() {
    return this.closed;
  }

  // As an AbortSignal's: a listener added once closed is never called.
  addEventListener(_type: 'abort', listener: () => void) {
    if (!this.closed) this.#keep(listener);
  }

  // Copied to their exact length: a pushed-to array keeps room for 17, and the socket keeps its releases for its whole life.
  #keep(release: () => void) {
    const releases = this.#releases;
    this.#releases = releases ? releases.concat([release]) : [release];
  }

  removeEventListener(_type: 'abort', listener: () => void) {
    const releases = this.#releases;
    const i = releases ? releases.indexOf(listener) : -1;
    if (i >= 0) releases!.splice(i, 1);
  }

  /** Frames written in one tick (a burst of events, a replay) leave in one write, not one each. */
  cork() {
    if (this.corked) return;
    this.corked = true;
    this.tcp.cork();
    process.nextTick(uncork, this);
  }

  #overLimit() {
    return this.inflight >= this.rules.maxInflight || this.inflightBytes >= this.rules.maxInflightBytes;
  }

  #pauseReading() {
    this.unread = true;
    this.socket.pause();
  }

  begin() {
    if (this.closed) return false;
    if (this.inflight >= this.rules.maxInflight * 2) return false;
    this.inflight++;
    if (this.#overLimit() && !this.socket.isPaused) this.#pauseReading();
    return true;
  }

  take(bytes: number) {
    this.inflight++;
    this.inflightBytes += bytes;
    if (this.#overLimit() && !this.socket.isPaused && !this.closed) this.#pauseReading();
  }

  end(bytes = 0) {
    this.inflight--;
    this.inflightBytes -= bytes;
    if (!this.#overLimit() && this.socket.isPaused && !this.closed) this.socket.resume();
  }

  expireAt(expiresAt: number | undefined) {
    if (expiresAt === undefined || this.closed) return;
    expiries.remove(this);
    this.expiresAt = expiresAt;
    expiries.add(this);
  }

  expire() {
    this.socket.close(ERROR_MAP.TOKEN_EXPIRED.wsClose, 'token expired');
  }

  /** One heartbeat tick for this socket; `late`: the tick came long after its period, so it judges no one. */
  beat(late: boolean) {
    // While reading is paused a pong waits unread behind the frames being worked through: a peer
    // is judged on an interval during which it was read throughout.
    if (this.alive || this.unread) this.missed = 0;
    else if (!late && ++this.missed >= 2) return void this.socket.terminate();
    this.alive = false;
    this.unread = this.socket.isPaused;
    this.socket.ping();
  }
}

/**
 * Every socket's heartbeat on one timer per interval. Timers run before sockets are read: a tick
 * that follows a stall of the process (GC, a long synchronous burst, a busy machine) finds the
 * peer's pong still unread. So a tick that came late judges no one, and a peer is dropped only
 * after two pings in a row went unanswered.
 *
 * The sockets are spread over slots visited one per tick, each once an interval, so the pings of
 * tens of thousands of sockets go out a few hundred at a time rather than in one long burst that
 * would hold up every delivery behind it.
 */
class Heartbeat {
  readonly #heads: Array<Session | null>;
  readonly #visited: number[];
  #next = 0;
  #fill = 0;
  #count = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly pingMs: number;

  constructor(pingMs: number) {
    this.pingMs = pingMs;
    const slots = Math.min(256, Math.max(1, Math.round(pingMs / HEARTBEAT_TICK_MS)));
    this.#heads = new Array<Session | null>(slots).fill(null);
    this.#visited = new Array<number>(slots).fill(0);
  }

  add(session: Session) {
    const slot = this.#fill;
    this.#fill = (slot + 1) % this.#heads.length;
    session.slot = slot;
    session.nextBeat = this.#heads[slot] ?? null;
    if (session.nextBeat) session.nextBeat.prevBeat = session;
    this.#heads[slot] = session;
    if (this.#count++ === 0) {
      this.#visited.fill(Date.now());
      this.#timer = setInterval(() => this.#tick(), this.pingMs / this.#heads.length);
    }
  }

  remove(session: Session) {
    if (session.slot < 0) return;
    if (session.prevBeat) session.prevBeat.nextBeat = session.nextBeat;
    else this.#heads[session.slot] = session.nextBeat;
    if (session.nextBeat) session.nextBeat.prevBeat = session.prevBeat;
    session.prevBeat = session.nextBeat = null;
    session.slot = -1;
    if (--this.#count === 0) clearInterval(this.#timer);
  }

  #tick() {
    const slot = this.#next;
    this.#next = (slot + 1) % this.#heads.length;
    const now = Date.now();
    const late = now - this.#visited[slot]! > this.pingMs * 1.5;
    this.#visited[slot] = now;
    for (let session = this.#heads[slot] ?? null; session; ) {
      const next = session.nextBeat;
      session.beat(late);
      session = next;
    }
  }
}

/** How often the heartbeat visits a slot: an interval is split into slots of about this length. */
const HEARTBEAT_TICK_MS = 250;

const heartbeats = new Map<number, Heartbeat>();
function heartbeatFor(pingMs: number) {
  let heartbeat = heartbeats.get(pingMs);
  if (!heartbeat) heartbeats.set(pingMs, (heartbeat = new Heartbeat(pingMs)));
  return heartbeat;
}

/** Every socket's token expiry, earliest first, on one timer: a binary heap indexed from the sessions. */
class Expiries {
  readonly #heap: Session[] = [];
  #timer: NodeJS.Timeout | undefined;
  #armedFor = Infinity;

  add(session: Session) {
    session.expiryIndex = this.#heap.length;
    this.#heap.push(session);
    this.#up(session.expiryIndex);
    this.#arm();
  }

  remove(session: Session) {
    const i = session.expiryIndex;
    if (i < 0) return;
    session.expiryIndex = -1;
    const last = this.#heap.pop()!;
    if (last !== session) {
      this.#heap[i] = last;
      last.expiryIndex = i;
      this.#down(this.#up(i));
    }
    this.#arm();
  }

  #arm() {
    const first = this.#heap[0]?.expiresAt ?? Infinity;
    if (first === this.#armedFor) return;
    clearTimeout(this.#timer);
    this.#armedFor = first;
    if (first === Infinity) return;
    this.#timer = setTimeout(() => this.#fire(), Math.min(Math.max(first - Date.now(), 0), MAX_TIMER_MS));
    // The sockets keep the process alive, not their expiry.
    this.#timer.unref();
  }

  #fire() {
    this.#armedFor = Infinity;
    const now = Date.now();
    while (this.#heap.length && this.#heap[0]!.expiresAt <= now) {
      const session = this.#heap[0]!;
      this.remove(session);
      session.expire();
    }
    this.#arm();
  }

  #up(i: number) {
    const heap = this.#heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.expiresAt <= heap[i]!.expiresAt) break;
      this.#swap(i, parent);
      i = parent;
    }
    return i;
  }

  #down(i: number) {
    const heap = this.#heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < heap.length && heap[l]!.expiresAt < heap[min]!.expiresAt) min = l;
      if (r < heap.length && heap[r]!.expiresAt < heap[min]!.expiresAt) min = r;
      if (min === i) return;
      this.#swap(i, min);
      i = min;
    }
  }

  #swap(i: number, j: number) {
    const heap = this.#heap;
    const a = heap[i]!;
    const b = heap[j]!;
    heap[i] = b;
    heap[j] = a;
    a.expiryIndex = j;
    b.expiryIndex = i;
  }
}

const expiries = new Expiries();

/**
 * Starts the rules on a socket the server accepted (a {@link SessionSocket}: see app.ts), and
 * lets go of its upgrade request: @fastify/websocket's error listener closes over the request and
 * its reply, and the upgrade's HTTP response stays attached to the TCP socket, so every idle
 * socket kept its whole upgrade request alive. Handlers must not keep `req` either.
 */
export function startSocketSession(socket: WebSocket, req: FastifyRequest, rules: SocketRules): SocketSession {
  if (!(socket instanceof SessionSocket)) throw new TypeError('startSocketSession: the WebSocket server must create SessionSocket instances (ws option `WebSocket`)');
  const session = new Session(socket, rules, req.server.log, req.id);
  socket.session = session;
  const response = (session.tcp as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (response) response.detachSocket(session.tcp);
  socket.removeAllListeners('error');
  // A shared listener (`this` is the socket): no closure per socket. Frames, pongs and the close reach the session through SessionSocket.emit.
  socket.on('error', onError as () => void);
  session.heartbeat.add(session);
  return session;
}

/**
 * Counts the socket toward its user's cap (both surfaces, this process) until it starts closing;
 * past the cap it is closed with 4029 (RATE_LIMITED: reconnect later) and false is returned. While
 * open, a ban (or erasure) of the user closes it, whichever instance it was made on.
 */
export function holdUserSocket({ socketSlots, admin }: { socketSlots: UserSlots; admin: { bans: { view: BanView } } }, socket: WebSocket, session: SocketSession, userId: string): boolean {
  const release = socketSlots.take(userId);
  if (!release) {
    socket.close(ERROR_MAP.RATE_LIMITED.wsClose, `at most ${socketSlots.max} sockets per user`);
    return false;
  }
  if (session.closed) return (release(), true);
  session.atClose(release);
  session.atClose(admin.bans.view.watch(userId, (why) => socket.close(ERROR_MAP[why.code].wsClose, why.message.slice(0, 120))));
  return !session.closed;
}
