import { expect } from 'vitest';
import { servedOpenApi } from './support/openapi.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename);

it('serves a valid OpenAPI 3.1 document describing the REST routes and every tRPC procedure', async ({ t }) => {
  // servedOpenApi fails unless the document passes the OpenAPI 3.1 meta-schema.
  const { document } = await servedOpenApi(t.url);
  const doc = document as unknown as { openapi: string; paths: Record<string, Record<string, { security?: unknown }>>; components: { securitySchemes: unknown } };
  expect(doc.openapi).toBe('3.1.0');
  expect(Object.keys(doc.paths)).toEqual(
    expect.arrayContaining([
      '/{chat_room_id}/messages/',
      '/rooms/',
      '/trpc/rooms.open',
      '/trpc/rooms.list',
      '/trpc/messages.list',
      '/trpc/messages.send',
      '/trpc/messages.typing',
      '/trpc/messages.onEvent',
    ]),
  );
  expect(doc.components.securitySchemes).toEqual({ bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } });
  expect(doc.paths['/{chat_room_id}/messages/']!.post!.security).toEqual([{ bearerAuth: [] }]);
});

it('serves interactive docs at /docs without any CDN', async ({ t }) => {
  const res = await fetch(`${t.url}/docs/`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/text\/html/);
  const html = await res.text();
  expect(html).toContain('/openapi.json');
  expect(html).not.toMatch(/https:\/\/cdn\./);
  // The page's own script comes from this server too.
  const scripts = [...html.matchAll(/<script[^>]+src="([^"]+)"/g)].map((m) => m[1]!);
  expect(scripts.length).toBeGreaterThan(0);
  for (const src of scripts) {
    const asset = await fetch(new URL(src, `${t.url}/docs/`));
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000);
  }
});
