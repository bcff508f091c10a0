import { TRPCClientError } from '@trpc/client';
import { expect } from 'vitest';

/** The tRPC code, Parley code and message a call was rejected with; fails the test if it was not. */
export async function rejection(promise: Promise<unknown>) {
  const err = await promise.then(
    () => expect.fail('expected the call to be rejected'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TRPCClientError);
  const data = (err as TRPCClientError<never>).data as unknown as { code: string; parleyCode: string };
  return { code: data.code, parleyCode: data.parleyCode, message: (err as Error).message };
}
