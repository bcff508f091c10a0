import type { Config } from '../infra/config/config.ts';

/**
 * The line `npm start` prints once it serves: where, on which database, and the two things a
 * newcomer does next (open the demo, get a token), and where metrics are scraped. Tests find the
 * URL after "Parley serving on" and the metrics listener's after "; metrics on", so it comes last.
 */
export function startBanner(config: Config, url: string, metrics: string): string {
  const database = config.workers > 1
    ? `${config.workers} workers, fan-out through ${config.fanout}`
    : config.databaseUrl ? 'PostgreSQL at DATABASE_URL' : `embedded PostgreSQL in ${config.dataDir}/postgres`;
  // With a JWKS only, tokens come from the identity provider: `npm run token` refuses.
  const token = config.jwt.jwksUrl && !config.jwt.hsSecret ? '' : '; a token for a user: npm run token -- <userId>';
  return `Parley serving on ${url} (${database}). Demo: ${url}/demo/${token}; metrics ${metrics}`;
}
