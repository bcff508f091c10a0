import { jsonContent, ref } from './json-schema.ts';

const detail = (description: string) => ({ description, content: jsonContent(ref('DrfDetailError')) });

/** The admin routes outside tRPC: a user's export, streamed. */
export const adminPaths = {
  '/admin/users/{userId}/export': {
    get: {
      operationId: 'exportUser',
      tags: ['Admin'],
      summary: "Everything involving a user (rooms, messages, read markers, blocks, reports), as NDJSON",
      description:
        'Admin credentials only: a token with the admin role claim (`ADMIN_ROLE_CLAIM`, default `role`: `"admin"`) or `ADMIN_TOKEN`. ' +
        'One `ExportLine` per line, streamed page by page: memory stays flat whatever the history. Audited as `users.export`.',
      security: [{ bearerAuth: [] }],
      parameters: [{ name: 'userId', in: 'path', required: true, schema: { type: 'string', minLength: 1, maxLength: 64 } }],
      responses: {
        200: { description: 'One JSON object per line', content: { 'application/x-ndjson': { schema: ref('ExportLine') } } },
        400: { description: 'Invalid user id', content: jsonContent(ref('DrfFieldErrors')) },
        401: detail('Missing or invalid credentials'),
        403: detail('Valid credentials without the admin role'),
      },
    },
  },
};
