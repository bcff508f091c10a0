/**
 * The closed set of domain error codes every Parley surface speaks.
 *
 * Each code maps to exactly one HTTP status, tRPC code and WebSocket close code
 * (see `server/transport/errors/transport-codes.ts` and the "Errors" table in README.md).
 */
export const PARLEY_ERROR_CODES = [
  'UNAUTHENTICATED',
  'TOKEN_EXPIRED',
  'TOKEN_INVALID',
  'FORBIDDEN',
  'ROOM_NOT_FOUND',
  'MESSAGE_NOT_FOUND',
  'EDIT_WINDOW_CLOSED',
  'MESSAGE_DELETED',
  'BLOCKED',
  'NOT_FOUND',
  'INVALID_INPUT',
  'PAYLOAD_TOO_LARGE',
  'METHOD_NOT_ALLOWED',
  'RATE_LIMITED',
  'SLOW_CONSUMER',
  'SHUTTING_DOWN',
  'AUTH_UNAVAILABLE',
  'INTERNAL',
] as const;

/** One of {@link PARLEY_ERROR_CODES}. */
export type ParleyErrorCode = (typeof PARLEY_ERROR_CODES)[number];

/** Field-level validation messages, keyed by field name (DRF style: `{ content: ['...'] }`). */
export type FieldErrors = Record<string, string[]>;

/** Machine-readable details; which keys are set depends on the code. */
export interface ParleyErrorDetails {
  /** For INVALID_INPUT: messages per offending field. */
  fields?: FieldErrors;
  /** For token failures: the JWT claim that failed, if any (`exp`, `nbf`, `iss`, `aud`, `sub`). */
  claim?: string;
  /** For token failures: why the token was refused. */
  reason?: string;
  /** For RATE_LIMITED: seconds until the next attempt can succeed (also REST's `Retry-After`). */
  retryAfterSeconds?: number;
}

/**
 * The one error type domain and adapter code throws.
 *
 * @example
 * throw new ParleyError('ROOM_NOT_FOUND', 'No such room');
 */
export class ParleyError extends Error {
  readonly code: ParleyErrorCode;
  readonly details: ParleyErrorDetails;

  constructor(code: ParleyErrorCode, message: string, details: ParleyErrorDetails = {}) {
    super(message);
    this.name = 'ParleyError';
    this.code = code;
    this.details = details;
  }
}

/** True when `value` is a {@link ParleyError} (also across module copies). */
export function isParleyError(value: unknown): value is ParleyError {
  return value instanceof ParleyError || (value instanceof Error && value.name === 'ParleyError' && 'code' in value);
}
