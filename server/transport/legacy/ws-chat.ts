import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { LegacyClientFrame, LegacyNewMessageFrame, LegacyTypingFrame, ParleyError, UserId, toLegacyMessage, type LegacyServerFrame, type OpenedRoom, type RoomEvent } from '../../../contracts/index.ts';
import type { FeedItem } from '../../messages/room-feed.ts';
import { authenticateRequest } from '../http/request-auth.ts';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { invalidInput, toParleyError } from '../errors/to-parley-error.ts';
import type { Services } from '../../services.ts';
import { createCaller } from '../trpc/app.router.ts';
import { contextForUser } from '../trpc/context.ts';
import { holdUserSocket, startSocketSession, type SocketPeer, type SocketSession } from '../ws/socket-session.ts';
import { checkLegacyPayload } from './legacy-payload.ts';

interface PairParams {
  userId: string;
  otherUserId: string;
}

/** The legacy wire knows new messages and typing only; edits, deletions, reads and presence are not sent. */
function frameOf(event: RoomEvent): LegacyServerFrame | undefined {
  if (event.type === 'message') return { action: 'new_message', message: toLegacyMessage(event.message) };
  if (event.type === 'typing') return { action: 'typing', chat_room: event.chat_room, user: event.user };
  return undefined;
}

/** The seed's `ws/chat/<userId>/<otherUserId>/` protocol, each action a call into the tRPC router. */
export async function registerLegacyWsAdapter(app: FastifyInstance, services: Services) {
  const { wsPingMs, wsSendQueueMaxBytes, wsMaxInflight, wsMaxInflightBytes } = services.config;
  // A live event is the same object for every socket of its room: serialize it once, not per socket.
  const frames = new WeakMap<RoomEvent, string>();
  const frameText = (event: RoomEvent) => {
    let text = frames.get(event);
    if (text === undefined) {
      const frame = frameOf(event);
      if (!frame) return undefined;
      frames.set(event, (text = JSON.stringify(frame)));
    }
    return text;
  };

  const rules = { maxBufferedBytes: wsSendQueueMaxBytes, maxInflight: wsMaxInflight, maxInflightBytes: wsMaxInflightBytes, pingMs: wsPingMs };
  const shared: Shared = { services, frameText, log: app.log };

  // The room is opened before the upgrade is accepted: once a client is connected, its room exists.
  const accepted = new WeakMap<FastifyRequest, { room: OpenedRoom; expiresAt: number | undefined }>();

  // The upgrade is refused with a plain HTTP status, as Channels' auth middleware did.
  async function authorizeUpgrade(req: FastifyRequest<{ Params: PairParams }>) {
    const { userId, expiresAt } = await authenticateRequest(services, req);
    const { userId: pathUser, otherUserId } = req.params;
    if (!UserId.safeParse(pathUser).success || !UserId.safeParse(otherUserId).success) throw new ParleyError('NOT_FOUND', 'Not found.');
    if (pathUser !== userId) throw new ParleyError('FORBIDDEN', 'userId in the URL is not the authenticated user.');
    accepted.set(req, { room: await createCaller(contextForUser(services, userId, 'legacy-ws')).rooms.open({ otherUserId }), expiresAt });
  }

  app.get<{ Params: PairParams }>(
    '/ws/chat/:userId/:otherUserId/',
    {
      websocket: true,
      // A refusal goes to the error handler: a plain HTTP status, as Channels' auth middleware did.
      preValidation: authorizeUpgrade,
    },
    (socket: WebSocket, req: FastifyRequest<{ Params: PairParams }>) => {
      const { userId, otherUserId } = req.params;
      const { room, expiresAt } = accepted.get(req)!;
      const session = startSocketSession(socket, req, rules);
      if (!holdUserSocket(services, socket, session, userId)) return;
      session.expireAt(expiresAt);
      session.atClose(services.presence.connect(userId));
      // The id and the seq to start from, not the room, nor the request (not even `req.log`): an
      // idle socket keeps what its handler keeps.
      new ChatSocket(shared, socket, session, userId, otherUserId, room.id, req.id).start(room.last_seq);
    },
  );
}

/** What every legacy socket of a server shares. */
interface Shared {
  services: Services;
  /** A live event's frame, serialized once for all the sockets of its room; undefined for an event the legacy wire does not carry. */
  frameText(event: RoomEvent): string | undefined;
  log: FastifyBaseLogger;
}

// Every socket's frame queue starts here: a resolved promise is as good as any other to chain on.
const NOTHING_QUEUED = Promise.resolve();

/**
 * One `ws/chat` socket: its room's feed written out as frames, its frames worked through in order.
 * An object with shared methods: a socket lives long and mostly idle, and a closure per action
 * weighed more than the socket's state.
 */
class ChatSocket implements SocketPeer {
  readonly #shared: Shared;
  readonly #socket: WebSocket;
  readonly #session: SocketSession;
  readonly #userId: string;
  readonly #otherUserId: string;
  readonly #roomId: string;
  readonly #reqId: string;
  /** Made at the socket's first frame: most sockets only listen. */
  #caller: ReturnType<typeof createCaller> | undefined;
  #queue = NOTHING_QUEUED;
  #events: AsyncGenerator<FeedItem> | undefined;

  constructor(shared: Shared, socket: WebSocket, session: SocketSession, userId: string, otherUserId: string, roomId: string, reqId: string) {
    this.#shared = shared;
    this.#socket = socket;
    this.#session = session;
    this.#userId = userId;
    this.#otherUserId = otherUserId;
    this.#roomId = roomId;
    this.#reqId = reqId;
  }

  /** Starts the feed at `seq`, the room's when the socket was accepted (nothing sent after is missed), and reading frames. */
  start(seq: number) {
    const { services } = this.#shared;
    services.metrics.subscription('legacy-ws', 1);
    services.messages.feed(this.#roomId, { seq, change: null }, this.#session.closeSignal, undefined, this.#userId).then((events) => {
      this.#events = events;
      this.#next();
    }, this.#failed);
    this.#session.serve(this);
  }

  // The feed is pulled one event at a time through two handlers made once per socket rather than
  // by a loop: an idle socket waits as a reaction on its feed's promise, not as a suspended frame.
  #next() {
    this.#events!.next().then(this.#delivered, this.#failed);
  }

  readonly #delivered = (item: IteratorResult<FeedItem>) => {
    if (item.done) return this.#ended();
    try {
      const text = this.#shared.frameText(item.value.event);
      if (text !== undefined) {
        this.#shared.services.metrics.delivered('legacy-ws');
        // The session's send-buffer cap applies to every write.
        this.#socket.send(text);
      }
    } catch (err) {
      void this.#events!.return(undefined);
      return this.#failed(err);
    }
    this.#next();
  };

  readonly #failed = (err: unknown) => {
    this.#ended();
    if (!this.#session.closed) this.#closeWith(err);
  };

  #ended() {
    this.#shared.services.metrics.subscription('legacy-ws', -1);
  }

  #sendError(err: unknown) {
    const parley = toParleyError(err);
    if (parley.code === 'INTERNAL') this.#shared.log.error({ reqId: this.#reqId, err }, 'legacy ws frame failed');
    this.#socket.send(JSON.stringify({ action: 'error', code: parley.code, detail: parley.message } satisfies LegacyServerFrame));
  }

  #closeWith(err: unknown) {
    const parley = toParleyError(err);
    if (this.#socket.readyState === this.#socket.OPEN) this.#socket.close(ERROR_MAP[parley.code].wsClose, parley.message.slice(0, 120));
  }

  #callerOf() {
    return (this.#caller ??= createCaller(contextForUser(this.#shared.services, this.#userId, 'legacy-ws'), { signal: this.#session.signal }));
  }

  /** `placed` hears that the frame's message has its place in the room's order. */
  async #handle(raw: string, placed: () => void) {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      throw new ParleyError('INVALID_INPUT', `Frame is not valid JSON: ${(err as Error).message}`);
    }
    const action = (json as { action?: unknown } | null)?.action;
    const schema = action === 'new_message' ? LegacyNewMessageFrame : action === 'typing' ? LegacyTypingFrame : LegacyClientFrame;
    const roomId = this.#roomId;
    const frame = checkLegacyPayload(schema, json, { roomId, userId: this.#userId, otherUserId: this.#otherUserId });
    if (frame.action === 'typing') return void (await this.#callerOf().messages.typing({ roomId }));
    await this.#shared.services.messages.whenQueued(placed, () => this.#callerOf().messages.send({ roomId, content: frame.message }));
  }

  async #run(raw: string | null, bytes: number, placed: () => void) {
    try {
      if (this.#session.closed) return;
      if (raw === null) throw new ParleyError('INVALID_INPUT', 'Binary frames are not supported.');
      await this.#handle(raw, placed);
    } catch (err) {
      this.#sendError(err);
    } finally {
      this.#session.end(bytes);
    }
  }

  // A socket's messages keep their order: a frame starts once the one before it is done or its
  // message has its place in the room's queue. Waiting for each to be stored instead capped a
  // socket at one message per commit (at 50 messages a second per socket, frames queued for
  // a second). Reading pauses while many are in progress, but a frame already read is never
  // refused: one TCP read can bring a whole burst, and the legacy protocol has no answer for
  // "too many" (only the per-user rate limit refuses a send). Once the socket closes, what is
  // still waiting is dropped.
  message(data: Buffer, isBinary: boolean) {
    const bytes = data.length;
    this.#session.take(bytes);
    const raw = isBinary ? null : data.toString();
    this.#queue = this.#queue.then(() => {
      const { promise, resolve } = Promise.withResolvers<void>();
      return Promise.race([promise, this.#run(raw, bytes, resolve)]);
    });
  }
}
