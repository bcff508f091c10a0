import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { ObjectStorage } from './object-storage.ts';

export interface S3Options {
  /** Unset: AWS itself; set (MinIO, R2, a test server): path-style addressing on that endpoint. */
  endpoint: string | undefined;
  bucket: string;
  region: string;
  /** Unset: the AWS SDK's default credential chain (environment, profile, instance role). */
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
}

const missing = (err: unknown) => err instanceof S3ServiceException && (err.name === 'NotFound' || err.name === 'NoSuchKey' || err.$metadata.httpStatusCode === 404);
const failed = (err: unknown, status: number, name: string) => err instanceof S3ServiceException && (err.name === name || err.$metadata.httpStatusCode === status);
const secondsUntil = (d: Date) => Math.max(1, Math.floor((d.getTime() - Date.now()) / 1000));

/**
 * Any S3-compatible store. Uploads are presigned POSTs: the policy's `content-length-range` makes
 * S3 itself refuse a body larger than declared, which a presigned PUT cannot express. Downloads
 * are presigned GETs whose response overrides set the type and disposition.
 */
export function createS3Storage({ endpoint, bucket, region, accessKeyId, secretAccessKey }: S3Options): ObjectStorage {
  const client = new S3Client({
    region,
    ...(endpoint && { endpoint, forcePathStyle: true }),
    ...(accessKeyId && secretAccessKey && { credentials: { accessKeyId, secretAccessKey } }),
  });

  async function size(key: string) {
    try {
      return (await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ContentLength;
    } catch (err) {
      if (missing(err)) return undefined;
      throw err;
    }
  }

  /**
   * Copies `from` to `to` unless `to` exists, then deletes `from`; false when neither is there.
   * If-None-Match: * on the copy is what keeps checked bytes at `to`: S3 refuses with 412 when
   * the key exists, and with 409 while another conditional write of it is under way (try again).
   * A store that ignores the header replaces `to` as a plain copy does.
   */
  async function move(from: string, to: string) {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.send(new CopyObjectCommand({ Bucket: bucket, Key: to, CopySource: `${bucket}/${from}`, IfNoneMatch: '*' }));
        break;
      } catch (err) {
        if (failed(err, 412, 'PreconditionFailed')) {
          // Deleting the upload is right only if the refusal was about `to`: a store that read the
          // header as a condition on the source would otherwise lose every upload it is sent.
          if ((await size(to)) === undefined) throw new Error(`The store refused to copy ${from} to ${to}, which does not exist: does it support If-None-Match on CopyObject?`, { cause: err });
          break;
        }
        if (failed(err, 409, 'ConditionalRequestConflict') && attempt < 3) continue;
        if (missing(err)) return (await size(to)) !== undefined;
        throw err;
      }
    }
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: from }));
    return true;
  }

  async function read(key: string) {
    const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  return {
    kind: 's3',

    async uploadTarget(key, { contentType, size: max, expiresAt }) {
      const { url, fields } = await createPresignedPost(client, {
        Bucket: bucket,
        Key: key,
        Conditions: [
          ['content-length-range', 1, max],
          ['eq', '$Content-Type', contentType],
        ],
        Fields: { 'Content-Type': contentType },
        Expires: secondsUntil(expiresAt),
      });
      return { url, method: 'POST', fields };
    },

    downloadUrl(key, { contentType, fileName, inline, expiresAt }) {
      const disposition = `${inline ? 'inline' : 'attachment'}; filename*=UTF-8''${encodeURIComponent(fileName)}`;
      return getSignedUrl(client, new GetObjectCommand({ Bucket: bucket, Key: key, ResponseContentType: contentType, ResponseContentDisposition: disposition }), {
        expiresIn: secondsUntil(expiresAt),
      });
    },

    size,
    read,

    async write(key, data, contentType) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: data, ContentType: contentType }));
    },

    // The ranged GET's Content-Range carries the object's size: no HEAD besides.
    async moveAndPeek(from, to, n) {
      if (!(await move(from, to))) return undefined;
      let res;
      try {
        res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: to, Range: `bytes=0-${n - 1}` }));
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
      const body = Buffer.from(await res.Body!.transformToByteArray());
      // "bytes 0-1023/1024"; a store that ignored the range sent the whole object.
      const total = res.ContentRange ? Number(res.ContentRange.slice(res.ContentRange.lastIndexOf('/') + 1)) : body.length;
      return { size: Number.isSafeInteger(total) ? total : ((await size(to)) ?? body.length), head: body.subarray(0, n) };
    },

    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },

    close: () => client.destroy(),
  };
}
