import type { FastifyRequest } from 'fastify';
import type { ParleyError } from '../../contracts/index.ts';
import { trpcErrorShape } from './trpc-error-shape.ts';

/**
 * A failure Fastify raises before tRPC runs (body too large, bad JSON), in tRPC's own error
 * shape, so the SDK reports it with its code instead of "unable to transform response". A
 * batched request (`?batch=1`, procedures joined by commas) gets one error per procedure.
 */
export function trpcHttpErrorBody(req: FastifyRequest, parley: ParleyError) {
  const url = new URL(req.url, 'http://local');
  const paths = decodeURIComponent(url.pathname.replace(/^\/trpc\/?/, '')).split(',');
  const errorFor = (path: string) => ({ error: trpcErrorShape(parley, path) });
  return url.searchParams.get('batch') === '1' ? paths.map(errorFor) : errorFor(paths[0] ?? '');
}

export const isTrpcRequest = (req: FastifyRequest) => req.url === '/trpc' || req.url.startsWith('/trpc/') || req.url.startsWith('/trpc?');
