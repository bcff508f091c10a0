import { TRPCClientError } from '@trpc/client';
import { PARLEY_ERROR_CODES, type ParleyErrorCode, type ParleyFailure } from '../contracts/index.ts';

/**
 * tRPC's client error class, the one the SDK throws. `@trpc/client` is a peer dependency, so an
 * app's own `import { TRPCClientError } from '@trpc/client'` is this same class; this re-export is
 * for apps that do not depend on tRPC directly.
 */
export { TRPCClientError };

const codes = new Set<string>(PARLEY_ERROR_CODES);

/**
 * The Parley error code behind anything the SDK threw or reported (docs/api.md "Errors"), or undefined
 * for a failure that never reached the server (network down) or is not Parley's.
 * Works across module copies: it reads the error's data, not its class.
 *
 * @example
 * ```ts
 * try { await chat.messages.edit.mutate({ roomId, messageId, content }); }
 * catch (err) { if (parleyCodeOf(err) === 'EDIT_WINDOW_CLOSED') showToast('Too late to edit'); }
 * ```
 */
export function parleyCodeOf(err: unknown): ParleyErrorCode | undefined {
  const code = dataOf(err)?.parleyCode;
  return typeof code === 'string' && codes.has(code) ? (code as ParleyErrorCode) : undefined;
}

/**
 * The Parley error behind anything the SDK threw or reported, with its message and details, or
 * undefined as for {@link parleyCodeOf}. Narrowing on `code` types `details`.
 *
 * @example
 * ```ts
 * const failure = parleyErrorOf(err);
 * if (failure?.code === 'RATE_LIMITED') retryIn(failure.details.retryAfterSeconds ?? 1);
 * if (failure?.code === 'INVALID_INPUT') showFieldErrors(failure.details.fields ?? {});
 * ```
 */
export function parleyErrorOf(err: unknown): ParleyFailure | undefined {
  const code = parleyCodeOf(err);
  if (code === undefined) return undefined;
  const details = dataOf(err)?.details;
  const message = (err as { message?: unknown }).message;
  // The server sends each code with that code's details (server/transport/errors/trpc-error-shape.ts).
  return { code, message: typeof message === 'string' ? message : '', details: typeof details === 'object' && details !== null ? details : {} } as ParleyFailure;
}

function dataOf(err: unknown): { parleyCode?: unknown; details?: unknown } | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  return (err as { data?: { parleyCode?: unknown } | null }).data ?? (err as { shape?: { data?: { parleyCode?: unknown } } }).shape?.data;
}

/** Codes after which the same call may succeed later, unchanged: the outbox retries these. */
const RETRYABLE: ReadonlySet<ParleyErrorCode> = new Set(['SHUTTING_DOWN', 'SLOW_CONSUMER', 'RATE_LIMITED', 'INTERNAL']);

/** True when a failed call is worth retrying as it is: no answer at all (offline), or a transient refusal. */
export function isRetryable(err: unknown): boolean {
  const code = parleyCodeOf(err);
  return code === undefined ? !(err instanceof TRPCClientError && err.data) : RETRYABLE.has(code);
}
