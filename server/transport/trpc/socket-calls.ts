import { ParleyError } from '../../../contracts/index.ts';
import type { SocketSession } from '../ws/socket-session.ts';

type CallType = 'query' | 'mutation' | 'subscription';

/**
 * How much one tRPC WebSocket may have running. tRPC's WebSocket adapter starts every call a socket
 * sends at once and bounds none of them; it creates one context per socket, so these bounds ride in
 * it and the caller rules admit each call here before it runs.
 */
export interface SocketCalls {
  /**
   * Admits a call, or throws RATE_LIMITED. A query or mutation holds one of the session's in-flight
   * units (reading pauses at the limit, calls already read past twice it are refused) until the
   * returned release; a subscription holds one of the socket's subscriptions until the release is
   * called (the caller rules call it once its signal aborts: on stop, when its stream ends or fails, when the socket closes).
   */
  admit(type: CallType): () => void;
}

export function socketCalls(session: SocketSession, maxSubscriptions: number): SocketCalls {
  let subscriptions = 0;
  return {
    admit(type) {
      let held = true;
      if (type !== 'subscription') {
        if (!session.begin()) throw new ParleyError('RATE_LIMITED', 'Too many requests in flight on this socket; wait for answers.');
        return () => {
          if (held) session.end();
          held = false;
        };
      }
      if (subscriptions >= maxSubscriptions) throw new ParleyError('RATE_LIMITED', `At most ${maxSubscriptions} subscriptions per socket.`);
      subscriptions++;
      return () => {
        if (held) subscriptions--;
        held = false;
      };
    },
  };
}
