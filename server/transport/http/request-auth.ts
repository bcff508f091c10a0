import type { FastifyRequest } from 'fastify';
import type { Services } from '../../services.ts';
import type { VerifiedToken } from '../../identity/token-verifier.ts';
import { extractToken } from './token-sources.ts';

/** The authenticated user of a plain HTTP request or WebSocket upgrade (Bearer header or `?token=`). */
export function authenticateRequest(services: Services, req: FastifyRequest): Promise<VerifiedToken> {
  return services.authenticator.authenticate(extractToken({ authorization: req.headers.authorization, url: req.url }));
}
