import scalar from '@scalar/fastify-api-reference';
import type { FastifyInstance } from 'fastify';
import { buildOpenApiDocument } from './openapi-document.ts';

/** `GET /openapi.json` and interactive docs at `/docs` (Scalar, served from the package: no CDN). */
export async function registerDocsRoutes(app: FastifyInstance) {
  const document = buildOpenApiDocument();
  app.get('/openapi.json', async () => document);
  await app.register(scalar, { routePrefix: '/docs', configuration: { url: '/openapi.json', title: 'Parley API' } });
}
