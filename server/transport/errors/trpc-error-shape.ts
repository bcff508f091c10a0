import { TRPC_ERROR_CODES_BY_KEY, type TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import type { ParleyErrorBody, ParleyErrorCode, ParleyErrorDetails } from '../../../contracts/index.ts';
import { ERROR_MAP } from './transport-codes.ts';

/**
 * The one builder of tRPC's error shape: the router's errorFormatter, Fastify-level failures on
 * `/trpc` and calls refused by the WebSocket's in-flight limit all answer with it. Its `data` is a
 * union on `parleyCode`, so the SDK's narrowing types `details`. Takes any
 * ParleyError, even one typed by a code known only at run time: its constructor gave it its
 * code's details.
 */
export function trpcErrorShape(failure: { code: ParleyErrorCode; message: string; details: ParleyErrorDetails }, path: string | undefined) {
  const mapped = ERROR_MAP[failure.code];
  // Spelled out, not a named alias of this module: the SDK's router type may refer to the contracts only.
  const data = { code: mapped.trpc, httpStatus: mapped.http, path, parleyCode: failure.code, details: failure.details } as { code: TRPC_ERROR_CODE_KEY; httpStatus: number; path: string | undefined } & ParleyErrorBody;
  return { code: TRPC_ERROR_CODES_BY_KEY[mapped.trpc], message: failure.message, data };
}
