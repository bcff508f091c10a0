import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver, { type S3rverContext } from 's3rver';
import { expect, it } from 'vitest';
import { createS3Storage } from '../server/infra/storage/s3-storage.ts';
import { attachmentSuite } from './support/attachment-suite.ts';

// The S3 backend against s3rver on loopback, through @aws-sdk/client-s3 and its presigners.
// s3rver stores, copies, deletes, serves ranges and honours X-Amz-Expires and the response
// overrides, but does not verify SigV4 signatures (its authentication middleware accepts any
// V4 request: "Signature version 4 calculation is unimplemented") nor POST policies
// (content-length-range, the policy's expiration). So the suite's checks that the store itself
// refuses are skipped here; the policy Parley asks S3 to enforce is checked below instead.
async function startS3rver(copyCondition: CopyCondition = 'as-s3') {
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'parley', configs: [] }] });
  server.middleware.unshift(conditionalCopy(server, copyCondition));
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * s3rver ignores If-None-Match on a copy and copies over the key regardless; S3 answers 412
 * Precondition Failed when the key exists. 'as-s3' does what S3 does, ahead of s3rver's routes, so
 * the suite checks that Parley asks for the condition and acts on the refusal. It looks, then lets
 * s3rver copy: not atomic as S3's is, which the suite's one-at-a-time moves do not need.
 * 'on-source' is a store that reads the header as a condition on the copy's source, which exists.
 */
type CopyCondition = 'as-s3' | 'on-source';
function conditionalCopy(server: S3rver, condition: CopyCondition) {
  return async (ctx: S3rverContext, next: () => Promise<void>) => {
    if (ctx.method === 'PUT' && ctx.get('x-amz-copy-source') && ctx.get('if-none-match') === '*') {
      const [bucket = '', ...key] = ctx.path.slice(1).split('/');
      if (condition === 'on-source' || (await server.store.existsObject(bucket, decodeURIComponent(key.join('/'))))) {
        ctx.status = 412;
        ctx.type = 'application/xml';
        ctx.body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>';
        return;
      }
    }
    await next();
  };
}

const s3Env = (endpoint: string) => ({ S3_ENDPOINT: endpoint, S3_BUCKET: 'parley', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER' });

attachmentSuite(import.meta.filename, {
  enforcesSignatures: false,
  async start() {
    const s3 = await startS3rver();
    return { env: s3Env(s3.endpoint), stop: s3.stop };
  },
});

it('uploads are presigned POSTs whose policy bounds the size, fixes the type and expires', async () => {
  const s3 = await startS3rver();
  try {
    const storage = createS3Storage({ endpoint: s3.endpoint, bucket: 'parley', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    const expiresAt = new Date(Date.now() + 600_000);
    const target = await storage.uploadTarget('uploads/x', { contentType: 'image/png', size: 1234, expiresAt });
    expect(target).toMatchObject({ method: 'POST', url: `${s3.endpoint}/parley`, fields: { key: 'uploads/x', 'Content-Type': 'image/png', 'X-Amz-Algorithm': 'AWS4-HMAC-SHA256' } });
    const policy = JSON.parse(Buffer.from(target.fields!.Policy!, 'base64').toString()) as { expiration: string; conditions: unknown[] };
    expect(policy.conditions).toEqual(expect.arrayContaining([['content-length-range', 1, 1234], ['eq', '$Content-Type', 'image/png'], { key: 'uploads/x' }]));
    expect(Math.abs(Date.parse(policy.expiration) - expiresAt.getTime())).toBeLessThan(2_000);
    storage.close?.();
  } finally {
    await s3.stop();
  }
});

it('a store that refuses the conditional copy with nothing at the target keeps the upload and says why', async () => {
  const s3 = await startS3rver('on-source');
  try {
    const storage = createS3Storage({ endpoint: s3.endpoint, bucket: 'parley', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
    const id = randomUUID();
    await storage.write(`uploads/${id}`, Buffer.from('kept'), 'text/plain');
    await expect(storage.moveAndPeek(`uploads/${id}`, `files/${id}`, 16)).rejects.toThrow(/does it support If-None-Match on CopyObject/);
    expect(await storage.size(`uploads/${id}`)).toBe(4);
    storage.close?.();
  } finally {
    await s3.stop();
  }
});
