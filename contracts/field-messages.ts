import type { z } from 'zod';

/**
 * Field error messages, in Django REST Framework's wording: legacy clients show them to people
 * as they did with the original, and the tRPC surface speaks the same language.
 */
export const FIELD_MESSAGES = {
  required: 'This field is required.',
  notNull: 'This field may not be null.',
  blank: 'This field may not be blank.',
  notString: 'Not a valid string.',
  uuid: 'Must be a valid UUID.',
  integer: 'A valid integer is required.',
  nul: 'Null characters are not allowed.',
  maxChars: (n: number) => `Ensure this field has no more than ${n} characters.`,
  minValue: (n: number) => `Ensure this value is greater than or equal to ${n}.`,
  maxValue: (n: number) => `Ensure this value is less than or equal to ${n}.`,
  /** A lone UTF-16 surrogate (never valid Unicode text), named by its code point. */
  surrogate: (codePoint: number) => `Surrogate characters are not allowed: U+${codePoint.toString(16).toUpperCase()}.`,
  /** The body or frame is not a JSON object; DRF names the Python type it got. */
  notObject: (got: string) => `Invalid data. Expected a dictionary, but got ${got}.`,
} as const;

/** Python's name for a JSON value's type, as DRF reports it. */
function pythonTypeOf(value: unknown): string {
  if (value === null) return 'NoneType';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  return { string: 'str', boolean: 'bool' }[typeof value as string] ?? typeof value;
}

/**
 * A schema's `error` option: missing and null values get DRF's own messages, any other wrong type
 * gets `wrongType`. Only type issues: a check's failure keeps the check's message.
 */
export function typeErrors(wrongType: string): z.core.$ZodErrorMap {
  return (issue) => {
    if (issue.code !== 'invalid_type') return undefined;
    if (issue.input === undefined) return FIELD_MESSAGES.required;
    return issue.input === null ? FIELD_MESSAGES.notNull : wrongType;
  };
}

/** The `error` option of a body or frame object: anything but a JSON object is a non-field error. */
export const objectErrors: z.core.$ZodErrorMap = (issue) =>
  issue.code === 'invalid_type' ? FIELD_MESSAGES.notObject(pythonTypeOf(issue.input)) : undefined;
