import type { TRPCProcedureType } from '@trpc/server';

/**
 * How much one tRPC WebSocket may have running. tRPC's WebSocket adapter starts every call a socket
 * sends at once and bounds none of them; it creates one context per socket, so these bounds ride in
 * it (socket-context.ts) and the caller rules admit each call here before it runs.
 */
export interface SocketCalls {
  /**
   * Admits a call, or throws RATE_LIMITED. A query or mutation holds one of the session's in-flight
   * units (reading pauses at the limit, calls already read past twice it are refused) until the
   * returned release; a subscription holds one of the socket's subscriptions until the release is
   * called (the caller rules call it once its signal aborts: on stop, when its stream ends or fails, when the socket closes).
   */
  admit(type: TRPCProcedureType): () => void;
}
