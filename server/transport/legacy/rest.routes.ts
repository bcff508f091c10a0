import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import {
  LegacyHistoryQuery,
  LegacyOpenRoomBody,
  MESSAGE_PAGE_MAX,
  type ChatRoom,
  type MessagePage,
  DEFAULT_PAGE_SIZE,
  ParleyError,
  RoomId,
  ROOM_PAGE_MAX,
  toLegacyMessage,
} from '../../../contracts/index.ts';
import { authenticateRequest } from '../http/request-auth.ts';
import { replyError } from '../errors/http-reply.ts';
import { invalidInput } from '../errors/to-parley-error.ts';
import { createLegacySendBodyCheck } from './legacy-send-body.ts';
import type { Services } from '../../services.ts';
import { createCaller } from '../trpc/app.router.ts';
import { contextForUser } from '../trpc/context.ts';

type Caller = ReturnType<typeof createCaller>;
/** A room in the seed's four fields (the tRPC outputs carry `last_seq` and more). */
const asChatRoom = ({ id, participant1, participant2, name }: ChatRoom): ChatRoom => ({ id, participant1, participant2, name });

interface RoomParams {
  chat_room_id: string;
}

/** Legacy REST routes of the spec, each a thin call into the tRPC router. */
export async function registerRestAdapter(parent: FastifyInstance, services: Services) {
  await parent.register(async (app) => {
    // Every failure, ours or Fastify's, answers in DRF's shapes (README "Legacy API").
    app.setErrorHandler((err, _req, reply) => replyError(reply, err));
    await restRoutes(app, services);
  });
}

async function restRoutes(app: FastifyInstance, services: Services) {
  const HISTORY_BATCH = MESSAGE_PAGE_MAX;
  const checkSendBody = createLegacySendBodyCheck(services.config.messageMaxChars);

  async function authed(req: FastifyRequest) {
    const { userId } = await authenticateRequest(services, req);
    return { userId, caller: createCaller(contextForUser(services, userId, 'rest')) };
  }

  function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
    const result = schema.safeParse(value ?? {});
    if (!result.success) throw invalidInput(result.error.issues);
    return result.data;
  }

  /** DRF's `<uuid:...>` path converter never matches a malformed id, so it is a 404 there and here. */
  function roomIdOf(req: FastifyRequest<{ Params: RoomParams }>) {
    const id = RoomId.safeParse(req.params.chat_room_id);
    if (!id.success) throw new ParleyError('NOT_FOUND', 'Not found.');
    return id.data;
  }

  /** The whole history as a JSON array, page by page, so memory stays flat for any room size. */
  async function* historyJson(caller: Caller, roomId: string, first: MessagePage) {
    let page = first;
    let separator = '[';
    for (;;) {
      let chunk = '';
      for (const message of page.items) {
        chunk += separator + JSON.stringify(toLegacyMessage(message));
        separator = ',';
      }
      if (chunk) yield chunk;
      if (page.nextCursor === null) break;
      page = await caller.messages.list({ roomId, cursor: page.nextCursor, limit: HISTORY_BATCH });
    }
    yield separator === '[' ? '[]' : ']';
  }

  app.get<{ Params: RoomParams; Querystring: Record<string, string> }>('/:chat_room_id/messages/', async (req, reply) => {
    const { caller } = await authed(req);
    const roomId = roomIdOf(req);
    const query = parse(LegacyHistoryQuery, req.query);
    if (query.limit === undefined && query.cursor === undefined) {
      // The first page is read before the status is sent, so a bad room is a clean 404.
      const first = await caller.messages.list({ roomId, limit: HISTORY_BATCH });
      const json = reply.type('application/json; charset=utf-8');
      // A history that fits in one page goes out in one write; longer ones stream page by page.
      if (first.nextCursor === null) return json.send(JSON.stringify(first.items.map(toLegacyMessage)));
      return json.send(Readable.from(historyJson(caller, roomId, first)));
    }
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const page = await caller.messages.list({ roomId, cursor: query.cursor, limit });
    if (page.nextCursor !== null) {
      const next = new URL(req.url, 'http://placeholder');
      next.searchParams.set('cursor', String(page.nextCursor));
      next.searchParams.set('limit', String(limit));
      void reply.header('link', `<${next.pathname}${next.search}>; rel="next"`);
    }
    return page.items.map(toLegacyMessage);
  });

  app.post<{ Params: RoomParams }>('/:chat_room_id/messages/', async (req, reply) => {
    const { caller, userId } = await authed(req);
    const roomId = roomIdOf(req);
    const body = checkSendBody(req.body, { roomId, userId });
    const message = await caller.messages.send({ roomId, content: body.content });
    return reply.code(201).send(toLegacyMessage(message));
  });

  app.post('/rooms/', async (req) => {
    const { caller } = await authed(req);
    const body = parse(LegacyOpenRoomBody, req.body);
    return asChatRoom(await caller.rooms.open({ otherUserId: body.other_user, ...(body.name ? { name: body.name } : {}) }));
  });

  app.get('/rooms/', async (req) => {
    const { caller } = await authed(req);
    // The legacy route has no paging: it walks every page of rooms.list. Nor has it requests or
    // archives, so it lists every room, as it always did.
    const rooms: ChatRoom[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.rooms.list({ limit: ROOM_PAGE_MAX, filter: 'all', ...(cursor ? { cursor } : {}) });
      rooms.push(...page.items.map(asChatRoom));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    return rooms;
  });
}
