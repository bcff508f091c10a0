import { isParleyError, ParleyError } from '../../contracts/index.ts';

/** Failures Fastify raises before our handlers run (body parsing, limits, routing), as Parley errors. */
export function fastifyErrorToParley(error: unknown): ParleyError {
  if (isParleyError(error)) return error;
  const err = (typeof error === 'object' && error !== null ? error : {}) as { statusCode?: number; code?: string; message?: string };
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
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new ParleyError('INVALID_INPUT', err.message ?? 'Bad request.');
  }
  return new ParleyError('INTERNAL', 'Internal server error');
}
