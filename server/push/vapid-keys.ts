import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import webpush from 'web-push';
import type { PushConfig } from '../infra/config/config.ts';
import type { VapidKeys } from './push-sender.ts';

/** Where development keeps its generated VAPID keys. */
export const devVapidFile = (dataDir: string) => resolve(dataDir, 'vapid-keys.json');

/** A subject push services accept when none is configured (development only). */
const DEV_SUBJECT = 'mailto:parley-development@example.invalid';

/**
 * The configured keys; in development without them, keys generated once and kept under the data
 * directory: browsers' subscriptions are bound to the public key, so a new key every start would
 * orphan every subscription.
 */
export async function loadVapidKeys(push: PushConfig, dataDir: string): Promise<VapidKeys> {
  if (push.vapid) return push.vapid;
  const file = devVapidFile(dataDir);
  try {
    const stored = JSON.parse(await readFile(file, 'utf8')) as Partial<VapidKeys>;
    if (stored.publicKey && stored.privateKey) return { publicKey: stored.publicKey, privateKey: stored.privateKey, subject: stored.subject ?? DEV_SUBJECT };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await mkdir(dataDir, { recursive: true });
  const keys = { ...webpush.generateVAPIDKeys(), subject: DEV_SUBJECT };
  await writeFile(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  return keys;
}
