import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectStderr, exitCode, spawnOnCluster } from './cluster-process.ts';
import { EmbeddedDatabaseError } from './embedded-errors.ts';
import type { PostgresBinaries, RunAs } from './postgres-binaries.ts';

/**
 * Every client, whichever local user runs it, must give the password: `trust` on loopback
 * made any OS user a superuser (and, through `COPY ... TO PROGRAM`, the postgres OS user).
 * The server has no unix socket, so loopback TCP is the only way in.
 */
const PG_HBA = `# Written by Parley at every start of this cluster: edits are overwritten.
# The password is in the data directory (see the Parley README); there is no unix socket.
host all all 127.0.0.1/32 scram-sha-256
`;

/**
 * Gives the superuser `postgres` this password and allows only password logins. Run before
 * every start, in single-user mode (no connection needed): the password file is the one
 * source of truth, and a cluster made when Parley used `trust` is upgraded on its next start.
 */
export async function secureCluster(bin: PostgresBinaries, dir: string, runAs: RunAs, password: string): Promise<void> {
  const args = (dataDir: string) => ['--single', '-D', dataDir, '-c', 'exit_on_error=on', '-c', 'lc_messages=C', 'postgres'];
  const child = spawnOnCluster(bin.postgres, args, { dir, runAs, stdio: ['pipe', 'ignore', 'pipe'] });
  const stderr = collectStderr(child);
  // Only the verifier reaches the server, so not even an error's log line can show the password.
  child.stdin!.end(`ALTER ROLE postgres PASSWORD '${scramVerifier(password)}';\n`);
  const code = await exitCode(child, bin.postgres, runAs);
  if (code !== 0) throw new EmbeddedDatabaseError('POSTGRES_FAILED', `Setting the password of the embedded PostgreSQL failed (exit ${code}): ${stderr.text()}`);
  await writeFile(join(dir, 'pg_hba.conf'), PG_HBA);
}

/** The SCRAM-SHA-256 verifier PostgreSQL stores for a password (RFC 7677); ours are ASCII, which SASLprep leaves as they are. */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
