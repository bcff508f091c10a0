import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { buildOpenApiDocument } from './openapi-document.ts';

/** Headers of the inner reply that describe its connection, not its content: the outer reply sets its own. */
const HOP_BY_HOP = new Set(['connection', 'content-length', 'keep-alive', 'transfer-encoding']);

/**
 * `GET /openapi.json` and interactive docs at `/docs` (Scalar, served from the package: no CDN).
 * Both are built on their first request: the reference UI's package alone is a tenth of the modules a
 * start imports, and few instances are ever asked for it.
 */
export async function registerDocsRoutes(app: FastifyInstance) {
  let document: ReturnType<typeof buildOpenApiDocument> | undefined;
  app.get('/openapi.json', async () => (document ??= buildOpenApiDocument()));

  let reference: Promise<FastifyInstance> | undefined;
  const loadReference = async () => {
    const { default: scalar } = await import('@scalar/fastify-api-reference');
    const inner = Fastify();
    await inner.register(scalar, { routePrefix: '/docs', configuration: { url: '/openapi.json', title: 'Parley API' } });
    await inner.ready();
    return inner;
  };
  const serve = async (req: FastifyRequest, reply: FastifyReply) => {
    const inner = await (reference ??= loadReference().catch((err: unknown) => {
      reference = undefined;
      throw err;
    }));
    const res = await inner.inject({ method: req.method as 'GET' | 'HEAD', url: req.url, headers: { accept: req.headers.accept ?? '*/*' } });
    for (const [name, value] of Object.entries(res.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) reply.header(name, value);
    return reply.code(res.statusCode).send(res.rawPayload);
  };
  app.get('/docs', serve);
  app.get('/docs/*', serve);
}
