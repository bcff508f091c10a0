import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, createWriteStream, fstatSync, linkSync, mkdirSync, openSync, read, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ArrivalCheck, ObjectStorage, UploadGrant } from './object-storage.ts';

/** What keys look like: the domain's prefixes and a UUID, so a key can never name a path outside the store. */
export const LOCAL_KEY = /^(uploads|files|thumbs)\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The path prefix Parley serves the local store under. */
export const FILES_PATH = '/files/';

/** Why a signed request is refused; the HTTP route maps each to a status. */
export class LocalStoreRefusal extends Error {
  readonly reason: 'signature' | 'expired' | 'too-large' | 'not-found';
  constructor(reason: LocalStoreRefusal['reason'], message: string) {
    super(message);
    this.reason = reason;
  }
}

/** What a verified download URL asks for. */
export interface DownloadGrant {
  key: string;
  contentType: string;
  disposition: 'inline' | 'attachment';
  fileName: string;
  expires: number;
}

export interface OpenedObject {
  size: number;
  /**
   * Writes the bytes of `range` (inclusive; all when absent) to `out`, holding at most two chunks
   * in flight; resolves once they are written or `out` closed. Closes the object either way.
   */
  pipeTo(out: Writable, range?: { start: number; end: number }): Promise<void>;
  close(): Promise<void>;
}

export interface LocalStorage extends ObjectStorage {
  readonly kind: 'local';
  verifyDownload(key: string, query: Record<string, string | undefined>, now?: number): DownloadGrant;
  verifyUpload(key: string, query: Record<string, string | undefined>, now?: number): UploadGrant;
  /**
   * Streams `body` to the grant's key, refusing it once it passes `maxBytes`; readers see the
   * whole file or none. With `check`, bytes that pass it go to the key it names instead, unless
   * something is there already (then they are discarded); bytes that fail it go to the grant's key
   * unless the checked key holds a file (then they are discarded too: that file stays).
   */
  receive(grant: UploadGrant, body: Readable, check?: ArrivalCheck): Promise<number>;
  /**
   * The object opened for reading: its size, and either a pipe of (a range of) it or a close.
   * One open and one fstat per download; the caller must call exactly one of `pipeTo` or `close`.
   */
  openRead(key: string): Promise<OpenedObject | undefined>;
  /** The size alone, for planning a range. */
  size(key: string): Promise<number | undefined>;
}

/**
 * Files under `root`, served by Parley at `/files/<key>` behind HMAC-signed, expiring URLs in the
 * shape of S3's presigned ones: whoever holds a URL may use it until it expires, and every
 * parameter that matters (method, key, expiry, type, size limit, disposition) is under the
 * signature. URLs are root-relative: the store does not know which name clients reach Parley by.
 */
export function createLocalStorage({ root, secret }: { root: string; secret: Buffer }): LocalStorage {
  const pathOf = (key: string) => {
    if (!LOCAL_KEY.test(key)) throw new LocalStoreRefusal('not-found', 'Not found.');
    return join(root, key);
  };
  const sign = (parts: (string | number)[]) => createHmac('sha256', secret).update(parts.join('\n')).digest('base64url');
  const check = (expected: string, given: string | undefined) => {
    const a = Buffer.from(expected);
    const b = Buffer.from(given ?? '');
    if (a.length !== b.length || !timingSafeEqual(a, b)) throw new LocalStoreRefusal('signature', 'The signature does not match this request.');
  };
  const expiresOf = (query: Record<string, string | undefined>, now: number) => {
    const expires = Number(query['X-Parley-Expires']);
    if (!Number.isSafeInteger(expires)) throw new LocalStoreRefusal('signature', 'The URL is not signed.');
    return expires;
  };
  const checkExpiry = (expires: number, now: number) => {
    if (expires * 1000 < now) throw new LocalStoreRefusal('expired', 'The URL has expired.');
  };
  const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
  const url = (key: string, params: Record<string, string>) => `${FILES_PATH}${key}?${new URLSearchParams(params).toString()}`;

  return {
    kind: 'local',

    async uploadTarget(key, { contentType, size, expiresAt }) {
      const expires = String(seconds(expiresAt));
      const signature = sign(['PUT', key, expires, contentType, size]);
      return {
        url: url(key, { 'X-Parley-Expires': expires, 'X-Parley-Max-Bytes': String(size), 'X-Parley-Content-Type': contentType, 'X-Parley-Signature': signature }),
        method: 'PUT',
        headers: { 'content-type': contentType },
      };
    },

    async downloadUrl(key, { contentType, fileName, inline, expiresAt }) {
      const expires = String(seconds(expiresAt));
      const disposition = inline ? 'inline' : 'attachment';
      const signature = sign(['GET', key, expires, contentType, disposition, fileName]);
      return url(key, { 'X-Parley-Expires': expires, type: contentType, disposition, name: fileName, 'X-Parley-Signature': signature });
    },

    verifyDownload(key, query, now = Date.now()) {
      pathOf(key);
      const expires = expiresOf(query, now);
      const contentType = query.type ?? '';
      const disposition = query.disposition === 'inline' ? 'inline' : 'attachment';
      const fileName = query.name ?? '';
      check(sign(['GET', key, expires, contentType, query.disposition ?? '', fileName]), query['X-Parley-Signature']);
      checkExpiry(expires, now);
      return { key, contentType, disposition, fileName, expires };
    },

    verifyUpload(key, query, now = Date.now()) {
      pathOf(key);
      const expires = expiresOf(query, now);
      const contentType = query['X-Parley-Content-Type'] ?? '';
      const maxBytes = Number(query['X-Parley-Max-Bytes']);
      check(sign(['PUT', key, expires, contentType, query['X-Parley-Max-Bytes'] ?? '']), query['X-Parley-Signature']);
      checkExpiry(expires, now);
      return { key, contentType, maxBytes };
    },

    async receive(grant, body, check) {
      const path = pathOf(grant.key);
      const { maxBytes } = grant;
      // The directory and the final rename are synchronous for the reason moveAndPeek gives.
      mkdirSync(dirname(path), { recursive: true });
      const part = `${path}.${randomBytes(6).toString('hex')}.part`;
      const head = Buffer.allocUnsafe(check ? check.peekBytes : 0);
      let received = 0;
      try {
        await pipeline(
          body,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              if (received < head.length) chunk.copy(head, received, 0, head.length - received);
              received += chunk.length;
              if (received > maxBytes) throw new LocalStoreRefusal('too-large', `The upload is larger than the ${maxBytes} bytes it was declared with.`);
              yield chunk;
            }
          },
          createWriteStream(part, { flags: 'wx' }),
        );
        const checkedKey = check?.checkedKey(grant);
        if (check && checkedKey) {
          const target = pathOf(checkedKey);
          if (await check.passes(grant, received, head.subarray(0, Math.min(received, head.length)))) {
            const placed = moveUnlessPresent(part, target);
            // An earlier upload that failed the check is of no use now.
            discard(path);
            if (placed) await check.arrived(grant);
            return received;
          }
          // What is at the checked key stays: a send takes it, not these bytes.
          if (statSync(target, { throwIfNoEntry: false })) {
            discard(part);
            return received;
          }
        }
        renameSync(part, path);
        return received;
      } catch (err) {
        await rm(part, { force: true });
        throw err;
      }
    },

    // Synchronous for the reason moveAndPeek gives: an open and an fstat of a local file.
    async openRead(key) {
      let fd: number;
      try {
        fd = openSync(pathOf(key), 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      let info;
      try {
        info = fstatSync(fd);
      } catch (err) {
        closeSync(fd);
        throw err;
      }
      if (!info.isFile()) {
        closeSync(fd);
        return undefined;
      }
      const size = info.size;
      return {
        size,
        pipeTo: (out, range) => pipeFile(fd, out, range ?? { start: 0, end: size - 1 }).finally(() => closeSync(fd)),
        close: async () => closeSync(fd),
      };
    },

    size: (key) => fileSize(pathOf(key)),

    read: (key) => readFile(pathOf(key)),

    async write(key, data) {
      const path = pathOf(key);
      await mkdir(dirname(path), { recursive: true });
      const part = `${path}.${randomBytes(6).toString('hex')}.part`;
      await writeFile(part, data);
      await rename(part, path);
    },

    /**
     * One open per object: the move, then its size and first bytes from that one descriptor.
     * Synchronous on purpose: five metadata calls and a 4 KiB read of a local file take about
     * 30 µs of CPU on the event loop, against about 200 µs of CPU through the thread pool's round
     * trips (docs/architecture.md, "Attachments"). DATA_DIR is a local disk; a network
     * filesystem is what the S3 store is for.
     */
    async moveAndPeek(from, to, bytes) {
      const target = pathOf(to);
      moveUnlessPresent(pathOf(from), target);
      let fd;
      try {
        fd = openSync(target, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
      try {
        const head = Buffer.alloc(bytes);
        const bytesRead = readSync(fd, head, 0, bytes, 0);
        // A read that stops short has reached the end: the file is that long.
        const size = bytesRead < bytes ? bytesRead : fstatSync(fd).size;
        return { size, head: head.subarray(0, bytesRead) };
      } finally {
        closeSync(fd);
      }
    },

    async delete(key) {
      await rm(pathOf(key), { force: true });
    },
  };
}

/** Bytes per read of a download. */
const CHUNK_BYTES = 64 * 1024;

const readAt = (fd: number, buffer: Buffer, length: number, position: number) =>
  new Promise<number>((resolve, reject) => read(fd, buffer, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * Bytes `start..end` of `fd` to `out` through two buffers it reuses: a chunk is read into one while
 * the other is being written, and a buffer is read into again only once its write is done. A read
 * stream allocates a chunk per read instead, garbage the collector frees late: a hundred readers
 * of large files grew the process by about 100 MiB that way. Stops when `out` closes (the client
 * went away); a file that turns out shorter than its size ends the response early, which its
 * Content-Length shows the client.
 */
async function pipeFile(fd: number, out: Writable, { start, end }: { start: number; end: number }) {
  const buffers = [Buffer.allocUnsafe(Math.min(CHUNK_BYTES, end - start + 1)), Buffer.allocUnsafe(Math.min(CHUNK_BYTES, end - start + 1))];
  const writing: Array<Promise<void> | undefined> = [undefined, undefined];
  let gone = out.destroyed;
  const closed = new Promise<void>((resolve) => out.once('close', () => resolve(void (gone = true))));
  for (let position = start, i = 0; position <= end && !gone; i ^= 1) {
    if (writing[i]) await Promise.race([writing[i], closed]);
    if (gone) break;
    const buffer = buffers[i]!;
    const n = await readAt(fd, buffer, Math.min(buffer.length, end - position + 1), position);
    if (n === 0 || gone) break;
    position += n;
    // Resolved on success or failure alike: a failed write destroys `out`, which `closed` tells.
    writing[i] = new Promise<void>((resolve) => out.write(buffer.subarray(0, n), () => resolve()));
  }
  await Promise.race([Promise.all(writing), closed]);
}

/**
 * Moves `source` to `target` unless `target` exists; then `source` is discarded. Returns whether
 * it moved it. The checks, a send's or an upload's on arrival, are of what is at `target`: a later
 * move (a retry, a re-upload, or a second send racing the first with a re-upload in between) must
 * never put other bytes there. A missing `source` (moved already, or never uploaded) is left for
 * the caller to find out. The target's directory is made only when the move says it is missing.
 *
 * A hard link is what refuses an existing target atomically (rename would replace it). The link
 * shares the upload's inode, which is safe because nothing here writes an existing file in place:
 * `receive` and `write` rename a fresh file over the key, so a re-upload gets an inode of its own.
 */
function moveUnlessPresent(source: string, target: string): boolean {
  for (let attempt = 0; ; attempt++) {
    try {
      linkSync(source, target);
      discard(source);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return (discard(source), false);
      // The missing one is the source or the target's directory: make the directory once and try again.
      if (code === 'ENOENT') {
        if (attempt > 0) return false;
        mkdirSync(dirname(target), { recursive: true });
        continue;
      }
      if (code && NO_HARD_LINKS.has(code)) return renameUnlessPresent(source, target);
      throw err;
    }
  }
}

/** What `link` fails with on a filesystem that has no hard links (FAT, some network and FUSE mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Where there are no hard links: a rename only when the target is not there. A move that looked
 * and found no target can still replace one another move renames there before it does; the alternative, an exclusive
 * copy, has no such window but copies every file and leaves a half-written target behind a crash,
 * which every retry would then find and refuse. Such filesystems are a fallback, not a setup to
 * choose: the window needs two moves of one upload and a re-upload within the same instant.
 */
function renameUnlessPresent(source: string, target: string): boolean {
  if (statSync(target, { throwIfNoEntry: false })?.isFile()) return (discard(source), false);
  // `link` may have refused before looking for the target's directory.
  mkdirSync(dirname(target), { recursive: true });
  try {
    renameSync(source, target);
    return true;
  } catch (err) {
    unlessMissing(err);
    return false;
  }
}

/** Rethrows anything but "no such file". */
function unlessMissing(err: unknown) {
  if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
}

/** The upload, once its bytes are at the target or were refused there (gone already is fine). */
function discard(source: string) {
  try {
    unlinkSync(source);
  } catch (err) {
    unlessMissing(err);
  }
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
