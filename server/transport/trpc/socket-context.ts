import type { TRPCProcedureType } from '@trpc/server';
import { ParleyError } from '../../../contracts/index.ts';
import type { AdminActor } from '../../admin/admin-auth.ts';
import type { Services } from '../../services.ts';
import { holdUserSocket, type SocketSession } from '../ws/socket-session.ts';
import type { Context } from './context.ts';
import type { SocketCalls } from './socket-calls.ts';

/**
 * The one context of a tRPC WebSocket (tRPC's socket protocol makes one per socket), its bounds
 * and its caller in one object with shared methods: an idle socket keeps its context for its whole
 * life, and the context of closures over the token, the socket and the upgrade's URL, plus the
 * socket's bounds as closures of their own, weighed more than the socket's other state.
 *
 * Its methods live on the prototype: the caller rules (procedures.ts, admin.procedure.ts), the
 * first middleware of every procedure, are handed this object itself; what they pass on to the
 * procedure is a copy of its fields, without the methods.
 */
export class SocketContext implements Context, SocketCalls {
  readonly services: Services;
  readonly surface = 'trpc' as const;
  readonly #token: string | undefined;
  readonly #session: SocketSession;
  readonly #maxSubscriptions: number;
  #user: Promise<string> | undefined = undefined;
  #admin: Promise<AdminActor> | undefined = undefined;
  #subscriptions = 0;

  constructor(services: Services, token: string | undefined, session: SocketSession, maxSubscriptions: number) {
    this.services = services;
    this.#token = token;
    this.#session = session;
    this.#maxSubscriptions = maxSubscriptions;
  }

  /** The socket's bounds: see {@link SocketCalls}. */
  get socket(): SocketCalls {
    return this;
  }

  /** Verifies the token once; the socket then counts toward its user, is online, and closes when the token expires. */
  authenticate(): Promise<string> {
    return (this.#user ??= this.services.authenticator.authenticate(this.#token).then(({ userId, expiresAt }) => {
      const session = this.#session;
      if (holdUserSocket(this.services, session.socket, session, userId)) {
        session.expireAt(expiresAt);
        // Online while the socket is open: released when it starts closing.
        session.atClose(this.services.presence.connect(userId));
      }
      return userId;
    }));
  }

  authenticateAdmin(): Promise<AdminActor> {
    return (this.#admin ??= this.services.admin.auth.authenticate(this.#token));
  }

  admit(type: TRPCProcedureType): () => void {
    let held = true;
    if (type !== 'subscription') {
      if (!this.#session.begin()) throw new ParleyError('RATE_LIMITED', 'Too many requests in flight on this socket; wait for answers.');
      return () => {
        if (held) this.#session.end();
        held = false;
      };
    }
    if (this.#subscriptions >= this.#maxSubscriptions) throw new ParleyError('RATE_LIMITED', `At most ${this.#maxSubscriptions} subscriptions per socket.`);
    this.#subscriptions++;
    return () => {
      if (held) this.#subscriptions--;
      held = false;
    };
  }
}
