import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { AdminUserInput } from '../../../contracts/index.ts';
import { replyError } from '../errors/http-reply.ts';
import { invalidInput } from '../errors/to-parley-error.ts';
import { extractToken } from '../http/token-sources.ts';
import type { Services } from '../../services.ts';

/**
 * `GET /admin/users/{userId}/export`: everything involving a user as NDJSON, one line per row,
 * streamed page by page (a tRPC query would buffer the whole answer). Errors before the first
 * line answer in DRF's shape, as every HTTP route outside /trpc.
 */
export async function registerAdminRoutes(parent: FastifyInstance, services: Services) {
  await parent.register(async (app) => {
    app.setErrorHandler((err, _req, reply) => replyError(reply, err));
    app.get<{ Params: { userId: string } }>('/admin/users/:userId/export', async (req, reply) => {
      const actor = await services.admin.auth.authenticate(extractToken({ authorization: req.headers.authorization }));
      const input = AdminUserInput.safeParse({ userId: req.params.userId });
      if (!input.success) throw invalidInput(input.error.issues);
      const lines = await services.admin.exportUser(actor.id, input.data.userId);
      return reply.type('application/x-ndjson; charset=utf-8').send(Readable.from(lines));
    });
  });
}
