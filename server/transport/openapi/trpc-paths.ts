import type { z } from 'zod';
import type { AnyRouter } from '@trpc/server';
import { jsonContent, jsonSchemaOf } from './json-schema.ts';

interface ProcedureDef {
  type: 'query' | 'mutation' | 'subscription';
  inputs: z.ZodType[];
  output?: z.ZodType;
  meta?: { output?: z.ZodType };
}

const trpcError = {
  description: 'tRPC error; `error.data.parleyCode` is the Parley error code (docs/api.md, "Errors")',
  content: jsonContent({ type: 'object', properties: { error: { type: 'object' } }, required: ['error'] }),
};

/** Every procedure of the router, read from its own zod input/output parsers. */
export function trpcPaths(router: AnyRouter) {
  const paths: Record<string, unknown> = {};
  const procedures = router._def.procedures as Record<string, { _def: ProcedureDef }>;
  for (const [path, { _def: def }] of Object.entries(procedures)) {
    const input = def.inputs[0] ? jsonSchemaOf(def.inputs[0], 'input') : undefined;
    const declared = def.meta?.output ?? def.output;
    const output = declared ? jsonSchemaOf(declared) : {};
    const common = { operationId: `trpc.${path}`, tags: ['tRPC'], security: [{ bearerAuth: [] }] };
    const ok = { 200: { description: 'Result', content: jsonContent({ type: 'object', properties: { result: { type: 'object', properties: { data: output } } } }) }, default: trpcError };
    if (def.type === 'mutation') {
      paths[`/trpc/${path}`] = { post: { ...common, summary: `mutation ${path}`, ...(input ? { requestBody: { required: true, content: jsonContent(input) } } : {}), responses: ok } };
    } else if (def.type === 'query') {
      const parameters = input ? [{ name: 'input', in: 'query', required: true, description: 'The input as JSON', content: jsonContent(input) }] : [];
      paths[`/trpc/${path}`] = { get: { ...common, summary: `query ${path}`, parameters, responses: ok } };
    } else {
      paths[`/trpc/${path}`] = {
        get: {
          ...common,
          summary: `subscription ${path} (WebSocket only)`,
          description: 'Subscribe over the tRPC WebSocket at `/trpc` (token in connectionParams). A room stream sends each event with its event id (`<seq>` or `<seq>.<change_seq>`, README "Ordering and resume"); resubscribe with `lastEventId` to resume.',
          parameters: input ? [{ name: 'input', in: 'query', required: true, content: jsonContent(input) }] : [],
          responses: {
            101: { description: 'Switching protocols (WebSocket)' },
            405: { description: 'Over plain HTTP (Server-Sent Events): refused with METHOD_NOT_ALLOWED; subscribe over the WebSocket', content: trpcError.content },
            default: trpcError,
          },
        },
      };
    }
  }
  return paths;
}
