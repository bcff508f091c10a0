import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import type { ParleyErrorCode } from '../../../contracts/index.ts';

export interface ErrorMapping {
  readonly http: number;
  readonly trpc: TRPC_ERROR_CODE_KEY;
  /**
   * 4000-4499: the client may reconnect (later, for 4029); 4500-4999: terminal, fix the request first.
   * 1001 (going away) and 1009 (message too big) are RFC 6455's own, which WebSocket libraries already understand.
   */
  readonly wsClose: number;
}

/** The only place a domain code becomes a transport code. Exhaustive: a new code does not compile until mapped. */
export const ERROR_MAP: Readonly<Record<ParleyErrorCode, ErrorMapping>> = Object.freeze({
  SHUTTING_DOWN: { http: 503, trpc: 'SERVICE_UNAVAILABLE', wsClose: 1001 },
  SLOW_CONSUMER: { http: 503, trpc: 'SERVICE_UNAVAILABLE', wsClose: 4001 },
  AUTH_UNAVAILABLE: { http: 503, trpc: 'SERVICE_UNAVAILABLE', wsClose: 4013 },
  INTERNAL: { http: 500, trpc: 'INTERNAL_SERVER_ERROR', wsClose: 4010 },
  UNAUTHENTICATED: { http: 401, trpc: 'UNAUTHORIZED', wsClose: 4500 },
  TOKEN_EXPIRED: { http: 401, trpc: 'UNAUTHORIZED', wsClose: 4501 },
  TOKEN_INVALID: { http: 401, trpc: 'UNAUTHORIZED', wsClose: 4502 },
  FORBIDDEN: { http: 403, trpc: 'FORBIDDEN', wsClose: 4503 },
  ROOM_NOT_FOUND: { http: 404, trpc: 'NOT_FOUND', wsClose: 4504 },
  MESSAGE_NOT_FOUND: { http: 404, trpc: 'NOT_FOUND', wsClose: 4508 },
  EDIT_WINDOW_CLOSED: { http: 409, trpc: 'CONFLICT', wsClose: 4509 },
  MESSAGE_DELETED: { http: 409, trpc: 'CONFLICT', wsClose: 4510 },
  // Neutral on purpose: both participants of a blocked pair get it, so it does not say who blocked.
  BLOCKED: { http: 403, trpc: 'FORBIDDEN', wsClose: 4511 },
  // A token refusal like an expired one (401), but terminal for sockets: reconnecting cannot help.
  BANNED: { http: 401, trpc: 'UNAUTHORIZED', wsClose: 4512 },
  REPORT_CLOSED: { http: 409, trpc: 'CONFLICT', wsClose: 4513 },
  ATTACHMENT_NOT_FOUND: { http: 404, trpc: 'NOT_FOUND', wsClose: 4520 },
  // The request was understood but its content refused: resending it unchanged fails again.
  CONTENT_REJECTED: { http: 422, trpc: 'UNPROCESSABLE_CONTENT', wsClose: 4514 },
  NOT_FOUND: { http: 404, trpc: 'NOT_FOUND', wsClose: 4505 },
  INVALID_INPUT: { http: 400, trpc: 'BAD_REQUEST', wsClose: 4506 },
  PAYLOAD_TOO_LARGE: { http: 413, trpc: 'PAYLOAD_TOO_LARGE', wsClose: 1009 },
  METHOD_NOT_ALLOWED: { http: 405, trpc: 'METHOD_NOT_SUPPORTED', wsClose: 4507 },
  // A client over a limit may retry later, so its close code is in the reconnect range.
  RATE_LIMITED: { http: 429, trpc: 'TOO_MANY_REQUESTS', wsClose: 4029 },
});
