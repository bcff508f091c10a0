import { ParleyError, isParleyError, type FieldErrors } from '../../contracts/index.ts';

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

export function invalidInput(issues: readonly IssueLike[]): ParleyError {
  return invalidFields(fieldErrorsFromIssues(issues));
}

/** INVALID_INPUT naming every offending field, the way DRF reports a serializer's errors. */
export function invalidFields(fields: FieldErrors): ParleyError {
  const summary = Object.entries(fields)
    .map(([field, messages]) => `${field}: ${messages.join('; ')}`)
    .join(', ');
  return new ParleyError('INVALID_INPUT', `Invalid input (${summary})`, { fields });
}

function hasIssues(value: unknown): value is { issues: IssueLike[] } {
  return typeof value === 'object' && value !== null && Array.isArray((value as { issues?: unknown }).issues);
}

/** Anything thrown, as a ParleyError: unknown failures become INTERNAL without leaking their message. */
export function toParleyError(err: unknown): ParleyError {
  if (isParleyError(err)) return err;
  if (hasIssues(err)) return invalidInput(err.issues);
  if (err instanceof Error && err.cause !== undefined && err.cause !== err) {
    const fromCause = toParleyError(err.cause);
    if (fromCause.code !== 'INTERNAL') return fromCause;
  }
  return new ParleyError('INTERNAL', 'Internal server error');
}
