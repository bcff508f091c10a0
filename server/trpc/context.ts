import type { CreateFastifyContextOptions } from '@trpc/server/adapters/fastify';
import { WebSocket } from 'ws';
import { extractToken } from '../auth/token-sources.ts';
import type { Services } from '../services.ts';
import { closeAtExpiry } from '../ws/socket-policies.ts';

/** What every procedure receives: the services, and the caller, resolved lazily from the token. */
export interface Context {
  services: Services;
  /** Verifies the request's token (once per context) and returns the user id. */
  authenticate(): Promise<string>;
  /** The connection's WebSocket, for tRPC over WebSocket: subscriptions watch its send buffer. */
  socket?: WebSocket | undefined;
}

/** A context for a token found anywhere on the request; verification waits until a procedure needs it. */
export function contextForToken(services: Services, token: string | undefined, socket?: WebSocket): Context {
  let user: Promise<string> | undefined;
  return {
    services,
    socket,
    authenticate: () =>
      (user ??= services.authenticator.authenticate(token).then(({ userId, expiresAt }) => {
        if (socket) closeAtExpiry(socket, expiresAt);
        return userId;
      })),
  };
}

/** A context for a caller an adapter has already authenticated. */
export function contextForUser(services: Services, userId: string): Context {
  const user = Promise.resolve(userId);
  return { services, authenticate: () => user };
}

/** tRPC's createContext for HTTP and WebSocket requests alike (over WebSocket, `res` is the socket). */
export function createContextFactory(services: Services) {
  return ({ req, res, info }: CreateFastifyContextOptions): Context =>
    contextForToken(
      services,
      extractToken({ authorization: req.headers.authorization, url: req.url, connectionParams: info.connectionParams }),
      res instanceof WebSocket ? res : undefined,
    );
}
