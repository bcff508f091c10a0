import { TRPCError } from '@trpc/server';
import type { TRPC_ERROR_CODE_KEY } from '@trpc/server/rpc';
import { ParleyError, isParleyError, parleyErrorOfCode, type AnyParleyError, type FieldErrors, type ParleyErrorCode } from '../../../contracts/index.ts';

interface IssueLike {
  path?: ReadonlyArray<PropertyKey | { key: PropertyKey }>;
  message: string;
}

/** Field errors in DRF's shape, from zod/standard-schema issues. */
export function fieldErrorsFromIssues(issues: readonly IssueLike[]): FieldErrors {
  const fields: FieldErrors = {};
  for (const issue of issues) {
    const key = issue.path?.length ? issue.path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.') : 'non_field_errors';
    (fields[key] ??= []).push(issue.message);
  }
  return fields;
}

export function invalidInput(issues: readonly IssueLike[]): ParleyError<'INVALID_INPUT'> {
  return invalidFields(fieldErrorsFromIssues(issues));
}

/** INVALID_INPUT naming every offending field, the way DRF reports a serializer's errors. */
export function invalidFields(fields: FieldErrors): ParleyError<'INVALID_INPUT'> {
  const summary = Object.entries(fields)
    .map(([field, messages]) => `${field}: ${messages.join('; ')}`)
    .join(', ');
  return new ParleyError('INVALID_INPUT', `Invalid input (${summary})`, { fields });
}

function hasIssues(value: unknown): value is { issues: IssueLike[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { issues?: unknown }).issues);
}

/**
 * tRPC's own failures (bad JSON, unknown procedure, wrong method or media type, ...) that never
 * reach our code. Exhaustive: an unmapped code once turned a CORS preflight into a 500 with
 * nothing logged.
 */
const FROM_TRPC_CODE: Readonly<Record<TRPC_ERROR_CODE_KEY, ParleyErrorCode>> = {
  PARSE_ERROR: 'INVALID_INPUT',
  BAD_REQUEST: 'INVALID_INPUT',
  UNPROCESSABLE_CONTENT: 'INVALID_INPUT',
  METHOD_NOT_SUPPORTED: 'METHOD_NOT_ALLOWED',
  UNSUPPORTED_MEDIA_TYPE: 'INVALID_INPUT',
  PRECONDITION_FAILED: 'INVALID_INPUT',
  PRECONDITION_REQUIRED: 'INVALID_INPUT',
  CONFLICT: 'INVALID_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNAUTHORIZED: 'UNAUTHENTICATED',
  PAYMENT_REQUIRED: 'FORBIDDEN',
  FORBIDDEN: 'FORBIDDEN',
  TOO_MANY_REQUESTS: 'RATE_LIMITED',
  CLIENT_CLOSED_REQUEST: 'INVALID_INPUT',
  TIMEOUT: 'INVALID_INPUT',
  INTERNAL_SERVER_ERROR: 'INTERNAL',
  NOT_IMPLEMENTED: 'INTERNAL',
  BAD_GATEWAY: 'INTERNAL',
  SERVICE_UNAVAILABLE: 'SHUTTING_DOWN',
  GATEWAY_TIMEOUT: 'INTERNAL',
};

/** Failures Fastify raises before our handlers run (body parsing, limits, routing). */
function fromFastify(err: { statusCode?: number; code?: string; message?: string }): AnyParleyError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      // DRF answers a ParseError with `{detail}`, not field errors: legacy clients expect that.
      return new ParleyError('INVALID_INPUT', `JSON parse error - ${err.message ?? 'invalid body'}`);
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ParleyError('PAYLOAD_TOO_LARGE', 'Request body is too large.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ParleyError('INVALID_INPUT', 'Unsupported media type: send application/json.');
  }
  if (err.statusCode === 404) return new ParleyError('NOT_FOUND', 'Not found.');
  if (err.statusCode === 413) return new ParleyError('PAYLOAD_TOO_LARGE', 'Request body is too large.');
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return new ParleyError('INVALID_INPUT', err.message ?? 'Bad request.');
  return undefined;
}

/**
 * The one translation of anything thrown — ours, zod's, tRPC's, Fastify's — into the closed code
 * set. Unknown failures become INTERNAL without leaking their message. (Token failures are
 * translated where tokens are verified, which knows a JWKS outage from a bad token.)
 */
export function toParleyError(err: unknown): AnyParleyError {
  if (isParleyError(err)) return err;
  if (hasIssues(err)) return invalidInput(err.issues);
  if (err instanceof Error && err.cause !== undefined && err.cause !== err) {
    const fromCause = toParleyError(err.cause);
    if (fromCause.code !== 'INTERNAL') return fromCause;
  }
  if (err instanceof TRPCError) {
    const code = FROM_TRPC_CODE[err.code];
    return code === 'INTERNAL' ? new ParleyError('INTERNAL', 'Internal server error') : parleyErrorOfCode(code, err.message);
  }
  if (typeof err === 'object' && err !== null) return fromFastify(err) ?? new ParleyError('INTERNAL', 'Internal server error');
  return new ParleyError('INTERNAL', 'Internal server error');
}
