import type { Surface } from '../../infra/metrics/metrics.ts';
import type { Services } from '../../services.ts';
import type { SocketCalls } from './socket-calls.ts';
import type { AdminActor } from '../../admin/admin-auth.ts';
import { ParleyError } from '../../../contracts/index.ts';

/** What every procedure receives: the services, and the caller, resolved lazily from the token. */
export interface Context {
  services: Services;
  /** Which surface the call came in on, for metrics. */
  surface: Surface;
  /** Verifies the request's token (once per context) and returns the user id. */
  authenticate(): Promise<string>;
  /** The bounds of the tRPC WebSocket the call came in on (tRPC creates one context per socket); none over HTTP. */
  socket?: SocketCalls;
  /** Verifies the request's credentials as an admin's: the admin role claim or ADMIN_TOKEN; FORBIDDEN otherwise. */
  authenticateAdmin(): Promise<AdminActor>;
}

/**
 * A context for a token found anywhere on an HTTP request; verification waits until a procedure
 * needs it. A tRPC WebSocket's context is a SocketContext (socket-context.ts).
 */
export function contextForToken(services: Services, token: string | undefined): Context {
  let user: Promise<string> | undefined;
  let admin: Promise<AdminActor> | undefined;
  return {
    services,
    surface: 'trpc',
    authenticateAdmin: () => (admin ??= services.admin.auth.authenticate(token)),
    authenticate: () => (user ??= services.authenticator.authenticate(token).then(({ userId }) => userId)),
  };
}

/** A context for a caller an adapter has already authenticated. */
export function contextForUser(services: Services, userId: string, surface: Surface): Context {
  const user = Promise.resolve(userId);
  // The legacy adapters speak for users only.
  const notAdmin = () => Promise.reject(new ParleyError('FORBIDDEN', 'This requires an admin token.'));
  return { services, surface, authenticate: () => user, authenticateAdmin: notAdmin };
}
