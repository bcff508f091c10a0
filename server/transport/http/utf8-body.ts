import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { ParleyError } from '../../../contracts/index.ts';

/**
 * Refuses a request body that is not valid UTF-8 (400) instead of letting it be decoded with
 * U+FFFD in place of the bad bytes: two different ids would silently become one.
 * A stream check, so every parser after it (ours and tRPC's own) gets bytes known to be clean.
 */
export function refuseInvalidUtf8Bodies(app: FastifyInstance) {
  app.addHook('preParsing', async (req, _reply, payload) => {
    if (!Number(req.headers['content-length']) && req.headers['transfer-encoding'] === undefined) return payload;
    // File uploads are bytes, not text.
    if (req.url.startsWith('/files/')) return payload;
    // A generator reads only once the parser does, so its error reaches the parser's listener.
    const checked = Readable.from(checkedUtf8(payload));
    // The parser stops listening once it has answered (a 413, say): a later read error must still have a listener, or it would be thrown.
    checked.on('error', () => undefined);
    return checked;
  });
}

async function* checkedUtf8(payload: AsyncIterable<Buffer>) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of payload) {
      decoder.decode(chunk, { stream: true });
      yield chunk;
    }
    decoder.decode();
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw Object.assign(new ParleyError('INVALID_INPUT', 'JSON parse error - request body is not valid UTF-8.'), { statusCode: 400 });
  }
}
