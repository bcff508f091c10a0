import type { TRPCWebSocketClient } from '@trpc/client';

/**
 * The client's WebSocket, as a person should hear about it: `idle` (no socket needed yet),
 * `connecting` (first connect), `open`, or `reconnecting` after a drop, with the close code and a
 * readable reason. Queries and mutations go over HTTP and work in any of these states.
 */
export type ConnectionStatus = 'idle' | 'connecting' | 'open' | 'reconnecting';

export interface ConnectionState {
  status: ConnectionStatus;
  /** WebSocket close code of the last drop (docs/api.md "Errors": 4000-4499 and 1001 reconnect by themselves). */
  closeCode?: number;
  /** Why the last connection closed, in words. */
  closeReason?: string;
}

/** A small store: read it with `get()`, hear changes with `subscribe()` (React: `useSyncExternalStore`). */
export interface Connection {
  get(): ConnectionState;
  /** Returns the unsubscribe function. */
  subscribe(listener: (state: ConnectionState) => void): () => void;
}

const REASONS: Record<number, string> = {
  1001: 'the server is restarting',
  1006: 'the connection was lost',
  4001: 'the connection fell too far behind',
  4010: 'the server failed',
  4029: 'too many requests',
  4500: 'not signed in',
  4501: 'the sign-in expired',
  4502: 'the sign-in token is invalid',
  4512: 'the account is banned',
};

/** Why a socket closed with `code`, in words. */
export function closeReasonOf(code: number | undefined): string {
  return (code !== undefined && REASONS[code]) || `the connection closed${code ? ` (${code})` : ''}`;
}

export interface ConnectionTracker extends Connection {
  /** For `createWSClient`'s `onClose`: remembers the code of the drop. */
  closed(code: number | undefined): void;
  /** Starts following the WebSocket client's state. */
  follow(ws: TRPCWebSocketClient): void;
}

export function createConnectionTracker(): ConnectionTracker {
  let state: ConnectionState = { status: 'idle' };
  let lastCode: number | undefined;
  const listeners = new Set<(state: ConnectionState) => void>();
  const set = (next: ConnectionState) => {
    if (next.status === state.status && next.closeCode === state.closeCode) return;
    state = next;
    for (const listener of listeners) listener(state);
  };
  return {
    get: () => state,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    closed(code) {
      lastCode = code;
      if ((state.status === 'open' || state.status === 'reconnecting') && code !== 1000) set({ status: 'reconnecting', closeCode: code, closeReason: closeReasonOf(code) });
    },
    follow(ws) {
      ws.connectionState.subscribe({
        next(s) {
          if (s.state === 'pending') set({ status: 'open' });
          else if (s.state === 'idle') set({ status: 'idle' });
          // tRPC reports a drop as "connecting" with the error that closed the socket.
          else if (s.error) set({ status: 'reconnecting', closeCode: lastCode, closeReason: closeReasonOf(lastCode) });
          else if (state.status !== 'reconnecting') set({ status: 'connecting' });
        },
      });
    },
  };
}
