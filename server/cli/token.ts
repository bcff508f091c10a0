import { parseArgs } from 'node:util';
import { UserId } from '../../contracts/index.ts';
import { loadOrCreateDevSecret } from '../identity/dev-secret.ts';
import { signToken } from '../identity/sign-token.ts';
import { loadConfig } from '../infra/config/config.ts';
import { misspellingMessage } from '../infra/config/config-typos.ts';

// `npm run token -- <userId> [--expires 30d] [--admin]`: a token the local server accepts.
const USAGE =
  'usage: npm run token -- <userId> [--expires 30d] [--admin]   (userId: 1-64 characters; --expires: a number with s, m, h, d or w; ' +
  '--admin: with the admin role claim, and without userId an admin-only token)';
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Prints one line saying what to do, and exits: no stack trace for a mistyped command. */
function fail(message: string): never {
  console.error(message);
  process.exit(2);
}

const args = (() => {
  try {
    return parseArgs({ allowPositionals: true, options: { expires: { type: 'string', default: '30d' }, admin: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
  } catch (err) {
    // parseArgs names the unknown option; the usage line says what is known.
    return fail(`${USAGE}   [${(err as Error).message.split('\n')[0]}]`);
  }
})();
if (args.values.help) {
  console.log(USAGE);
  process.exit(0);
}
const admin = args.values.admin;
const userId = args.positionals.length === 0 && admin ? undefined : UserId.safeParse(args.positionals[0]);
if ((userId && !userId.success) || args.positionals.length > 1) fail(USAGE);
const span = /^(\d+)(s|m|h|d|w)$/.exec(args.values.expires);
if (!span) fail(`--expires "${args.values.expires}" is not a lifetime: use a number with s, m, h, d or w, e.g. --expires 12h.`);
const lifetimeSeconds = Number(span[1]) * UNIT_SECONDS[span[2]!]!;
if (lifetimeSeconds === 0) fail('--expires must be longer than 0, e.g. --expires 12h.');

const config = (() => {
  try {
    return loadConfig();
  } catch (err) {
    return fail((err as Error).message);
  }
})();
// A mistyped JWT_SECRET would otherwise sign with the development secret without a word.
for (const m of config.misspellings) console.error(misspellingMessage(m));
if (!config.jwt.hsSecret && config.jwt.jwksUrl) fail('JWT_JWKS_URL is set: tokens come from your identity provider, not from Parley.');
const { maxAgeSeconds } = config.jwt;
if (maxAgeSeconds > 0 && lifetimeSeconds > maxAgeSeconds) {
  fail(`--expires ${args.values.expires} is longer than JWT_MAX_AGE_SECONDS (${maxAgeSeconds} s), after which the server refuses the token: choose a shorter lifetime.`);
}
// No keys configured: loadConfig allowed that only in development mode, where the server uses this secret too.
const secret = config.jwt.hsSecret ?? (await loadOrCreateDevSecret(config.dataDir));
const claims = admin ? { [config.jwt.roleClaim]: 'admin' } : {};
console.log(await signToken({ secret, userId: userId?.data, expiresIn: `${lifetimeSeconds}s`, issuer: config.jwt.issuer, audience: config.jwt.audience, claims }));
