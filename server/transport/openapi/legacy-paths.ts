import { MESSAGE_PAGE_MAX } from '../../../contracts/index.ts';
import { jsonContent, ref } from './json-schema.ts';

const errors = {
  401: { description: 'Missing, expired or invalid token', headers: { 'WWW-Authenticate': { schema: { type: 'string' } } }, content: jsonContent(ref('DrfDetailError')) },
  403: { description: 'Acting as another user', content: jsonContent(ref('DrfDetailError')) },
  404: { description: 'No such room, not a participant, or a malformed room id', content: jsonContent(ref('DrfDetailError')) },
  413: { description: 'Body over the size limit', content: jsonContent(ref('DrfDetailError')) },
  400: { description: 'Validation errors per field, or `{detail}` for malformed JSON', content: jsonContent({ oneOf: [ref('DrfFieldErrors'), ref('DrfDetailError')] }) },
};
const throttled = {
  description: 'Over the per-user send rate (all surfaces count); retry after `Retry-After` seconds',
  headers: { 'Retry-After': { schema: { type: 'integer', minimum: 1 } } },
  content: jsonContent(ref('DrfDetailError')),
};
const roomParam = { name: 'chat_room_id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
const secured = { security: [{ bearerAuth: [] }] };

/** The spec's REST routes (plus `/rooms/`), for legacy clients. */
export const legacyPaths = {
  '/{chat_room_id}/messages/': {
    get: {
      operationId: 'listMessages',
      tags: ['Legacy REST'],
      summary: 'All messages of a room, oldest first (or one page with ?limit=&cursor=)',
      ...secured,
      parameters: [
        roomParam,
        { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MESSAGE_PAGE_MAX }, description: 'Page size; with limit or cursor, one page is returned' },
        { name: 'cursor', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'Start after this seq (from the Link header)' },
      ],
      responses: {
        200: {
          description: 'Messages, oldest first',
          headers: { Link: { description: '`<...>; rel="next"` when a page has a successor', schema: { type: 'string' } } },
          content: jsonContent({ type: 'array', items: ref('LegacyMessage') }),
        },
        400: errors[400],
        401: errors[401],
        404: errors[404],
      },
    },
    post: {
      operationId: 'sendMessage',
      tags: ['Legacy REST'],
      summary: 'Post a message to a room',
      ...secured,
      parameters: [roomParam],
      requestBody: { required: true, content: jsonContent(ref('LegacySendMessageBody')) },
      responses: { 201: { description: 'The stored message', content: jsonContent(ref('LegacyMessage')) }, ...errors, 429: throttled },
    },
  },
  '/rooms/': {
    get: {
      operationId: 'listRooms',
      tags: ['Legacy REST'],
      summary: "The caller's rooms, newest activity first",
      ...secured,
      responses: { 200: { description: 'Rooms', content: jsonContent({ type: 'array', items: ref('ChatRoom') }) }, 401: errors[401] },
    },
    post: {
      operationId: 'openRoom',
      tags: ['Legacy REST'],
      summary: "Get or create the caller's room with another user",
      ...secured,
      requestBody: { required: true, content: jsonContent(ref('LegacyOpenRoomBody')) },
      responses: { 200: { description: 'The room', content: jsonContent(ref('ChatRoom')) }, 400: errors[400], 401: errors[401], 413: errors[413] },
    },
  },
  '/healthz': { get: { operationId: 'healthz', tags: ['Operations'], responses: { 200: { description: 'Process is up' } } } },
  '/readyz': { get: { operationId: 'readyz', tags: ['Operations'], responses: { 200: { description: 'Database reachable and fan-out engine connected' }, 503: { description: 'Database unreachable, or fan-out engine disconnected (sends still work)' } } } },
};
