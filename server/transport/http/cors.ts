import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../../infra/config/config.ts';

// Any port on the machine itself: a dev front end (Vite and the like) served beside `npm start`.
const LOOPBACK_ORIGIN = /^http:\/\/(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$/;

/**
 * Lets browsers on the configured origins call the REST and tRPC HTTP routes. Preflights are
 * answered in an onRequest hook, before tRPC, which would otherwise take an OPTIONS request for a
 * procedure call. Tokens travel in `Authorization`, never in cookies, so credentials stay off.
 */
export async function registerCors(app: FastifyInstance, config: Config) {
  const { corsOrigins } = config;
  await app.register(cors, {
    origin: corsOrigins === 'loopback' ? LOOPBACK_ORIGIN : corsOrigins === '*' ? '*' : corsOrigins.length > 0 ? [...corsOrigins] : false,
    methods: ['GET', 'HEAD', 'POST', 'PUT'],
    allowedHeaders: ['authorization', 'content-type', 'trpc-accept', 'last-event-id', 'range'],
    exposedHeaders: ['link', 'www-authenticate', 'content-range', 'content-disposition'],
    maxAge: 600,
    // An OPTIONS request without Origin is no preflight, but still gets an answer, not a 400.
    strictPreflight: false,
  });
}
