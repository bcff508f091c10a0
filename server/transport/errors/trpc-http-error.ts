import type { FastifyRequest } from 'fastify';
import { TRPC_BATCH_MAX_ITEMS, type AnyParleyError } from '../../../contracts/index.ts';
import { trpcErrorShape } from './trpc-error-shape.ts';

/**
 * A failure Fastify raises before tRPC runs (body too large, bad JSON), in tRPC's own error
 * shape, so the SDK reports it with its code instead of "unable to transform response". A
 * batched request (`?batch=1`, procedures joined by commas) gets one error per procedure; past
 * the batch limit, one error for the whole request, as tRPC answers such a batch: an unmatched
 * URL of thousands of short paths must not make an answer a hundred times its size.
 */
export function trpcHttpErrorBody(req: FastifyRequest, parley: AnyParleyError) {
  const url = new URL(req.url, 'http://local');
  // A path Fastify could not decode still gets an answer, naming no procedure.
  const paths = url.pathname.replace(/^\/trpc\/?/, '').split(',');
  const errorFor = (path: string) => ({ error: trpcErrorShape(parley, path) });
  if (url.searchParams.get('batch') !== '1') return errorFor(decodedOrEmpty(paths[0] ?? ''));
  return paths.length > TRPC_BATCH_MAX_ITEMS ? errorFor('') : paths.map((p) => errorFor(decodedOrEmpty(p)));
}

function decodedOrEmpty(component: string) {
  try {
    return decodeURIComponent(component);
  } catch (err) {
    // A malformed %-escape names no procedure; the answer is NOT_FOUND either way.
    void err;
    return '';
  }
}

export const isTrpcRequest = (req: FastifyRequest) => req.url === '/trpc' || req.url.startsWith('/trpc/') || req.url.startsWith('/trpc?');
