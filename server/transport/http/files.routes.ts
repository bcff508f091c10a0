import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ParleyError } from '../../../contracts/index.ts';
import { LocalStoreRefusal, type LocalStorage } from '../../infra/storage/local-storage.ts';
import type { ArrivalCheck } from '../../infra/storage/object-storage.ts';
import { replyError } from '../errors/http-reply.ts';

interface FileParams {
  prefix: string;
  id: string;
}
type FileRequest = FastifyRequest<{ Params: FileParams; Querystring: Record<string, string | undefined> }>;

/** The store's refusals in the closed set of codes: a bad or expired signature is a 403, as S3 answers it. */
function parleyErrorOf(err: unknown): unknown {
  if (!(err instanceof LocalStoreRefusal)) return err;
  if (err.reason === 'too-large') return new ParleyError('PAYLOAD_TOO_LARGE', err.message);
  if (err.reason === 'not-found') return new ParleyError('NOT_FOUND', 'Not found.');
  return new ParleyError('FORBIDDEN', err.message);
}

/** RFC 6266 with an RFC 5987 name: every browser gets the exact name, old ones an ASCII stand-in. */
function contentDisposition(disposition: string, fileName: string) {
  const ascii = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `${disposition}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}

/**
 * One byte range (`bytes=a-b`, `a-`, `-n`), inclusive; `undefined` for none or several (served
 * whole, as RFC 9110 allows), `false` for a range the file cannot satisfy.
 */
function rangeOf(header: string | undefined, size: number): { start: number; end: number } | undefined | false {
  const m = header?.match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return suffix === 0 || size === 0 ? false : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start >= size || end < start ? false : { start, end };
}

/**
 * The local store's objects at `/files/<key>`: downloads (GET, HEAD, with `Range`) and uploads
 * (PUT, streamed to disk) on the URLs the store signed. No bearer token: the signature is the
 * permission, as with S3's presigned URLs.
 */
export async function registerFileRoutes(parent: FastifyInstance, files: LocalStorage, arrivals: ArrivalCheck) {
  await parent.register(async (app) => {
    app.setErrorHandler((err, _req, reply) => replyError(reply, parleyErrorOf(err)));
    // Upload bodies are streamed by the route itself, whatever their type.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, _payload, done) => done(null));

    app.get('/files/:prefix/:id', async (req: FileRequest, reply: FastifyReply) => {
      const key = `${req.params.prefix}/${req.params.id}`;
      const grant = files.verifyDownload(key, req.query);
      const opened = await files.openRead(key);
      if (!opened) throw new ParleyError('NOT_FOUND', 'Not found.');
      const { size } = opened;
      const range = rangeOf(req.headers.range, size);
      const headers: Record<string, string | number> = {
        'content-type': grant.contentType,
        'content-disposition': contentDisposition(grant.disposition, grant.fileName),
        'x-content-type-options': 'nosniff',
        // Even a file opened inline runs nothing: no scripts, no plugins, no requests of its own.
        'content-security-policy': "default-src 'none'; img-src 'self'; media-src 'self'; sandbox",
        'accept-ranges': 'bytes',
        'cache-control': `private, max-age=${Math.max(0, grant.expires - Math.floor(Date.now() / 1000))}`,
      };
      if (range === false) {
        await opened.close();
        return reply.code(416).headers(headers).header('content-range', `bytes */${size}`).send();
      }
      const status = range ? 206 : 200;
      if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${size}`;
      headers['content-length'] = range ? range.end - range.start + 1 : size;
      // A HEAD answer keeps the GET's headers only when given a stream (an empty payload would
      // make its Content-Length 0); an empty one spares reading the file to throw it away.
      if (req.method === 'HEAD') {
        await opened.close();
        return reply.code(status).headers(headers).send(Readable.from([]));
      }
      // The body goes out by the store's own pipe (reused buffers); Fastify's hooks that follow a
      // reply still run (onResponse), and this server has none that shape one (onSend).
      reply.hijack();
      try {
        reply.raw.writeHead(status, headers);
      } catch (err) {
        await opened.close();
        req.log.error({ err, key }, "a download's headers were refused");
        return void reply.raw.destroy();
      }
      try {
        if (size > 0) await opened.pipeTo(reply.raw, range || undefined);
        else await opened.close();
        if (!reply.raw.destroyed) reply.raw.end();
      } catch (err) {
        req.log.warn({ err, key }, 'a download failed midway');
        reply.raw.destroy();
      }
    });

    app.put('/files/:prefix/:id', async (req: FileRequest, reply: FastifyReply) => {
      const grant = files.verifyUpload(`${req.params.prefix}/${req.params.id}`, req.query);
      if ((req.headers['content-type'] ?? '') !== grant.contentType) {
        throw new ParleyError('FORBIDDEN', `This URL takes an upload of Content-Type ${grant.contentType}.`);
      }
      const declared = Number(req.headers['content-length']);
      if (declared > grant.maxBytes) throw new ParleyError('PAYLOAD_TOO_LARGE', `The upload is larger than the ${grant.maxBytes} bytes it was declared with.`);
      await files.receive(grant, req.raw, arrivals);
      return reply.code(200).send();
    });
  });
}
