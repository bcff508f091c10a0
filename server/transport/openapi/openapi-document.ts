import {
  ChatRoom,
  DrfDetailError,
  DrfFieldErrors,
  ExportLine,
  LegacyClientFrame,
  LegacyMessage,
  LegacyOpenRoomBody,
  LegacySendMessageBody,
  LegacyServerFrame,
  RoomEvent,
} from '../../../contracts/index.ts';
import { appRouter } from '../trpc/app.router.ts';
import { jsonSchemaOf } from './json-schema.ts';
import { legacyPaths } from './legacy-paths.ts';
import { adminPaths } from './admin-paths.ts';
import { trpcPaths } from './trpc-paths.ts';

/** The OpenAPI 3.1 document, generated from the same zod contracts the server validates with. */
export function buildOpenApiDocument() {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley',
      version: '0.1.0',
      description:
        'One-to-one chat. Legacy REST routes (the Django original\'s paths) and the tRPC procedures they wrap. ' +
        'WebSockets: tRPC at `/trpc`; legacy `ws/chat/{userId}/{otherUserId}/?token=JWT` with the frames in ' +
        '`LegacyClientFrame` / `LegacyServerFrame`. `admin.*` procedures and `/admin/` routes take admin credentials only.',
    },
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        LegacyMessage: jsonSchemaOf(LegacyMessage),
        ChatRoom: jsonSchemaOf(ChatRoom),
        LegacySendMessageBody: jsonSchemaOf(LegacySendMessageBody, 'input'),
        LegacyOpenRoomBody: jsonSchemaOf(LegacyOpenRoomBody, 'input'),
        DrfDetailError: jsonSchemaOf(DrfDetailError),
        DrfFieldErrors: jsonSchemaOf(DrfFieldErrors),
        LegacyClientFrame: jsonSchemaOf(LegacyClientFrame, 'input'),
        LegacyServerFrame: jsonSchemaOf(LegacyServerFrame),
        RoomEvent: jsonSchemaOf(RoomEvent),
        ExportLine: jsonSchemaOf(ExportLine),
      },
    },
    paths: { ...legacyPaths, ...adminPaths, ...trpcPaths(appRouter) },
  };
}
