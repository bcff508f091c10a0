import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { DemoConfig } from '../../../contracts/demo-config.ts';
import { ParleyError, UserId } from '../../../contracts/index.ts';
import { signToken } from '../../identity/sign-token.ts';
import { replyError } from '../errors/http-reply.ts';
import { invalidInput } from '../errors/to-parley-error.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

export interface DemoRoutesOptions {
  /** The built demo (Vite's output). */
  distDir: string;
  /** Set only while the server runs on its generated development secret: then `POST /demo/token` exists. */
  devSecret: string | undefined;
  /** ADMIN_ROLE_CLAIM: the claim `POST /demo/token` sets when asked for an admin token. */
  roleClaim: string;
  /** MESSAGE_EDIT_WINDOW_SECONDS, for `GET /demo/config`: the page hides Edit once a message's window closes. */
  messageEditWindowSeconds: number;
}

/**
 * The demo web client at `/demo/` (static files built by Vite from `demo/`), and in development
 * only, a token for any user name, so anyone can try Parley without minting JWTs. With a
 * configured JWT_SECRET or JWKS the route does not exist and the page asks for a token.
 */
export async function registerDemoRoutes(app: FastifyInstance, { distDir, devSecret, roleClaim, messageEditWindowSeconds }: DemoRoutesOptions) {
  const root = normalize(distDir + '/');

  async function serve(wanted: string, reply: FastifyReply) {
    const path = normalize(join(root, wanted));
    // A path that climbs out of the build (`..`, encoded or not) is no file of ours.
    if (!path.startsWith(root) || !TYPES[extname(path)]) return replyError(reply, new ParleyError('NOT_FOUND', 'Not found.'));
    try {
      const body = await readFile(path);
      // Vite names assets by content hash, so they never change; the page itself may.
      void reply.header('cache-control', wanted.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      return reply.type(TYPES[extname(path)]!).send(body);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const detail = wanted === 'index.html' ? 'The demo is not built: run `npm run build:demo` (npm ci does it).' : 'Not found.';
      return replyError(reply, new ParleyError('NOT_FOUND', detail));
    }
  }
  // Asset URLs are absolute (/demo/assets/…), so the page works at `/demo` and `/demo/` alike.
  app.get('/demo', (_req, reply) => serve('index.html', reply));
  app.get<{ Params: { '*': string } }>('/demo/*', (req, reply) => serve(req.params['*'] || 'index.html', reply));
  app.get('/demo/config', (): DemoConfig => ({ messageEditWindowSeconds }));

  if (!devSecret) return;
  // `admin: true` adds the admin role: anyone may become admin here, which is no more than the
  // route already grants (any user name, and `npm run token -- --admin` on the same secret).
  app.post('/demo/token', async (req, reply) => {
    const body = req.body as { user?: unknown; admin?: unknown } | undefined;
    const user = UserId.safeParse(body?.user);
    if (!user.success) return replyError(reply, invalidInput(user.error.issues.map((i) => ({ ...i, path: ['user'] }))));
    const claims = body?.admin === true ? { [roleClaim]: 'admin' } : {};
    return { token: await signToken({ secret: devSecret, userId: user.data, expiresIn: '12h', claims }) };
  });
}
