import { TRPC_ERROR_CODES_BY_KEY } from '@trpc/server/rpc';
import type { ParleyErrorCode, ParleyErrorDetails } from '../../../contracts/index.ts';
import { ERROR_MAP } from './transport-codes.ts';

/** What a tRPC error says, in Parley's terms. */
export interface ParleyFailure {
  code: ParleyErrorCode;
  message: string;
  details: ParleyErrorDetails;
}

/**
 * The one builder of tRPC's error shape: the router's errorFormatter, Fastify-level failures on
 * `/trpc` and calls refused by the WebSocket's in-flight limit all answer with it.
 */
export function trpcErrorShape(failure: ParleyFailure, path: string | undefined) {
  const mapped = ERROR_MAP[failure.code];
  return {
    code: TRPC_ERROR_CODES_BY_KEY[mapped.trpc],
    message: failure.message,
    data: { code: mapped.trpc, httpStatus: mapped.http, path, parleyCode: failure.code, details: failure.details },
  };
}
