import { parseArgs } from 'node:util';
import { UserId } from '../../contracts/index.ts';
import { loadOrCreateDevSecret } from '../auth/dev-secret.ts';
import { signToken } from '../auth/sign-token.ts';
import { loadConfig } from '../config.ts';

// `npm run token -- <userId> [--expires 30d]`: a token the local server accepts.
const { positionals, values } = parseArgs({ allowPositionals: true, options: { expires: { type: 'string', default: '30d' } } });
const userId = UserId.safeParse(positionals[0]);
if (!userId.success) {
  console.error('usage: npm run token -- <userId> [--expires 30d]   (userId: 1-64 characters)');
  process.exit(2);
}
const config = loadConfig();
if (!config.jwt.hsSecret && config.jwt.jwksUrl) {
  console.error('JWT_JWKS_URL is set: tokens come from your identity provider, not from Parley.');
  process.exit(2);
}
const secret = config.jwt.hsSecret ?? (await loadOrCreateDevSecret(config.dataDir));
console.log(await signToken({ secret, userId: userId.data, expiresIn: values.expires, issuer: config.jwt.issuer, audience: config.jwt.audience }));
