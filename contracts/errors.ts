/**
 * The closed set of domain error codes every Parley surface speaks.
 *
 * Each code maps to exactly one HTTP status, tRPC code and WebSocket close code
 * (see `server/transport/errors/transport-codes.ts` and the "Errors" table in docs/api.md).
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
  'BANNED',
  'REPORT_CLOSED',
  'ATTACHMENT_NOT_FOUND',
  'CONTENT_REJECTED',
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

/** INVALID_INPUT, and FORBIDDEN for a field naming someone else (a spoofed sender). */
export interface FieldErrorDetails {
  /** Messages per offending field. */
  fields?: FieldErrors;
}

/** TOKEN_EXPIRED and TOKEN_INVALID. */
export interface TokenErrorDetails {
  /** The JWT claim that failed, if any (`exp`, `nbf`, `iat`, `iss`, `aud`, `sub`). */
  claim?: string;
  /** Why the token was refused. */
  reason?: string;
}

/** RATE_LIMITED. */
export interface RateLimitDetails {
  /** Seconds until the next attempt can succeed (also REST's `Retry-After`); absent for caps on what is held at once. */
  retryAfterSeconds?: number;
}

/** BANNED: until when (ISO 8601); absent for a ban without end. The moderator's reason stays private. */
export interface BanDetails {
  until?: string;
}

/** CONTENT_REJECTED: the moderation's reason (also the message); `unchecked` when the content could not be checked (the hook failed and MODERATION_FAIL is closed): retrying later may pass. */
export interface ContentRejectedDetails {
  reason?: string;
  unchecked?: boolean;
}

/** AUTH_UNAVAILABLE and INTERNAL. */
export interface ReasonDetails {
  reason?: string;
}

/** The codes that carry nothing beyond their message. */
export type NoDetails = Record<string, never>;

/** What `details` holds, per code. Every key is optional: `{}` is valid details for any code. */
export interface ParleyErrorDetailsByCode {
  UNAUTHENTICATED: NoDetails;
  TOKEN_EXPIRED: TokenErrorDetails;
  TOKEN_INVALID: TokenErrorDetails;
  FORBIDDEN: FieldErrorDetails;
  ROOM_NOT_FOUND: NoDetails;
  MESSAGE_NOT_FOUND: NoDetails;
  EDIT_WINDOW_CLOSED: NoDetails;
  MESSAGE_DELETED: NoDetails;
  NOT_FOUND: NoDetails;
  INVALID_INPUT: FieldErrorDetails;
  PAYLOAD_TOO_LARGE: NoDetails;
  METHOD_NOT_ALLOWED: NoDetails;
  RATE_LIMITED: RateLimitDetails;
  SLOW_CONSUMER: NoDetails;
  SHUTTING_DOWN: NoDetails;
  AUTH_UNAVAILABLE: ReasonDetails;
  INTERNAL: ReasonDetails;
  BLOCKED: NoDetails;
  BANNED: BanDetails;
  REPORT_CLOSED: NoDetails;
  ATTACHMENT_NOT_FOUND: NoDetails;
  CONTENT_REJECTED: ContentRejectedDetails;
}

/** The details of code `C`; without `C`, those of any code. */
export type ParleyErrorDetails<C extends ParleyErrorCode = ParleyErrorCode> = ParleyErrorDetailsByCode[C];

type Failures = { [C in ParleyErrorCode]: { code: C; message: string; details: ParleyErrorDetails<C> } };
/** A Parley error as data (what crosses the wire): a union on `code`, so narrowing the code types `details`. */
export type ParleyFailure<C extends ParleyErrorCode = ParleyErrorCode> = Failures[C];

type Bodies = { [C in ParleyErrorCode]: { parleyCode: C; details: ParleyErrorDetails<C> } };
/** The Parley part of a tRPC error's `data`: a union on `parleyCode`, so narrowing the code types `details`. */
export type ParleyErrorBody<C extends ParleyErrorCode = ParleyErrorCode> = Bodies[C];

/**
 * The one error type domain and adapter code throws. Catch it as {@link AnyParleyError}, whose
 * `details` follow from its `code`.
 *
 * @example
 * throw new ParleyError('ROOM_NOT_FOUND', 'No such room');
 * throw new ParleyError('RATE_LIMITED', 'Slow down', { retryAfterSeconds: 2 });
 */
export class ParleyError<C extends ParleyErrorCode = ParleyErrorCode> extends Error {
  readonly code: C;
  readonly details: ParleyErrorDetails<C>;

  constructor(code: C, message: string, details?: ParleyErrorDetails<C>) {
    super(message);
    this.name = 'ParleyError';
    this.code = code;
    // Every code's details are all optional (see ParleyErrorDetailsByCode): `{}` is valid for any code.
    this.details = details ?? ({} as ParleyErrorDetails<C>);
  }
}

/** A {@link ParleyError} of any one code: narrowing on `code` types `details`. */
export type AnyParleyError = { [C in ParleyErrorCode]: ParleyError<C> }[ParleyErrorCode];

/** A ParleyError of a code known only at run time, without details. */
export function parleyErrorOfCode(code: ParleyErrorCode, message: string): AnyParleyError {
  // `{}` is valid details for every code, so the error is one of the union whatever the code.
  return new ParleyError(code, message) as AnyParleyError;
}

/** True when `value` is a {@link ParleyError} (also across module copies). */
export function isParleyError(value: unknown): value is AnyParleyError {
  return value instanceof ParleyError || (value instanceof Error && value.name === 'ParleyError' && 'code' in value);
}
