import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { LegacyClientFrame, LegacyNewMessageFrame, LegacyTypingFrame, ParleyError, UserId, toLegacyMessage, type LegacyServerFrame, type OpenedRoom, type RoomEvent } from '../../../contracts/index.ts';
import { authenticateRequest } from '../http/request-auth.ts';
import { ERROR_MAP } from '../errors/transport-codes.ts';
import { invalidInput, toParleyError } from '../errors/to-parley-error.ts';
import type { Services } from '../../services.ts';
import { createCaller } from '../trpc/app.router.ts';
import { contextForUser } from '../trpc/context.ts';
import { holdUserSocket, startSocketSession } from '../ws/socket-session.ts';
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
      // The id and the seq to start from, not the room: an idle socket keeps what its closures hold.
      const roomId = room.id;
      const startSeq = room.last_seq;
      const session = startSocketSession(socket, req, { maxBufferedBytes: wsSendQueueMaxBytes, maxInflight: wsMaxInflight, maxInflightBytes: wsMaxInflightBytes, pingMs: wsPingMs });
      // Not `req.log`: a closure over the request keeps it alive as long as the socket.
      const { log } = app;
      const reqId = req.id;
      if (!holdUserSocket(services, socket, session, userId)) return;
      session.expireAt(expiresAt);
      session.atClose(services.presence.connect(userId));
      // Made at the socket's first frame: most sockets only listen.
      let caller: ReturnType<typeof createCaller> | undefined;
      const callerOf = () => (caller ??= createCaller(contextForUser(services, userId, 'legacy-ws'), { signal: session.signal }));

      // The session's send-buffer cap applies to every write.
      const send = (frame: LegacyServerFrame | string) => socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
      const sendError = (err: unknown) => {
        const parley = toParleyError(err);
        if (parley.code === 'INTERNAL') log.error({ reqId, err }, 'legacy ws frame failed');
        send({ action: 'error', code: parley.code, detail: parley.message });
      };
      const closeWith = (err: unknown) => {
        const parley = toParleyError(err);
        if (socket.readyState === socket.OPEN) socket.close(ERROR_MAP[parley.code].wsClose, parley.message.slice(0, 120));
      };

      // The feed starts at the seq the room had when the socket was accepted: nothing sent after is missed.
      void (async () => {
        const { metrics } = services;
        metrics.subscription('legacy-ws', 1);
        try {
          for await (const { event } of await services.messages.feed(roomId, { seq: startSeq, change: null }, session.signal, undefined, userId)) {
            const text = frameText(event);
            if (text === undefined) continue;
            metrics.delivered('legacy-ws');
            send(text);
          }
        } finally {
          metrics.subscription('legacy-ws', -1);
        }
      })().catch((err: unknown) => {
        if (!session.signal.aborted) closeWith(err);
      });

      /** `placed` hears that the frame's message has its place in the room's order. */
      async function handle(raw: string, placed: () => void) {
        let json: unknown;
        try {
          json = JSON.parse(raw);
        } catch (err) {
          throw new ParleyError('INVALID_INPUT', `Frame is not valid JSON: ${(err as Error).message}`);
        }
        const action = (json as { action?: unknown } | null)?.action;
        const schema = action === 'new_message' ? LegacyNewMessageFrame : action === 'typing' ? LegacyTypingFrame : LegacyClientFrame;
        const frame = checkLegacyPayload(schema, json, { roomId, userId, otherUserId });
        if (frame.action === 'typing') return void (await callerOf().messages.typing({ roomId }));
        await services.messages.whenQueued(placed, () => callerOf().messages.send({ roomId, content: frame.message }));
      }

      async function run(raw: string | null, bytes: number, placed: () => void) {
        try {
          if (session.signal.aborted) return;
          if (raw === null) throw new ParleyError('INVALID_INPUT', 'Binary frames are not supported.');
          await handle(raw, placed);
        } catch (err) {
          sendError(err);
        } finally {
          session.end(bytes);
        }
      }

      // A socket's messages keep their order: a frame starts once the one before it is done or its
      // message has its place in the room's queue. Waiting for each to be stored instead capped a
      // socket at one message per commit (at 50 messages a second per socket, frames queued for
      // a second). Reading pauses while many are in progress, but a frame already read is never
      // refused: one TCP read can bring a whole burst, and the legacy protocol has no answer for
      // "too many" (only the per-user rate limit refuses a send). Once the socket closes, what is
      // still waiting is dropped.
      let queue = Promise.resolve();
      socket.on('message', (data: Buffer, isBinary) => {
        const bytes = data.length;
        session.take(bytes);
        const raw = isBinary ? null : data.toString();
        queue = queue.then(() => {
          const { promise, resolve } = Promise.withResolvers<void>();
          return Promise.race([promise, run(raw, bytes, resolve)]);
        });
      });
    },
  );
}
