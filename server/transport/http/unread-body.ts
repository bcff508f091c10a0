import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** A few times any body limit (tRPC's batches included): a client past it is not one that merely overshot. */
const MAX_DISCARDED_BYTES = 4 * 1024 * 1024;

/**
 * An answer sent before its request's body was read (a 413 on Content-Length, or once the body
 * passed the limit) first reads and discards the rest of that body, up to 4 MiB or `maxMs`.
 * Otherwise the connection closes with the client still writing: its next write meets a reset,
 * which discards the answer waiting unread in its receive buffer, and a client that writes
 * everything before reading (Python's urllib, any blocking client without Expect: 100-continue)
 * sees a broken pipe instead of the status. Past the bounds the answer goes out with
 * Connection: close regardless.
 */
export function drainUnreadBodies(app: FastifyInstance, { maxMs }: { maxMs: number }) {
  // Only a refusal answers before the body is read, so the hook is on the error path alone,
  // never on the way out of a successful request.
  app.addHook('onError', async (req, reply) => {
    if (req.raw.complete || req.raw.destroyed) return;
    if (!(await discardRest(req.raw, MAX_DISCARDED_BYTES, maxMs))) reply.header('connection', 'close');
  });
}

/** Resolves true once the body ended, false past the bounds or if the connection went. */
function discardRest(req: IncomingMessage, maxBytes: number, maxMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let seen = 0;
    const done = (ended: boolean) => {
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('close', onClose);
      resolve(ended);
    };
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > maxBytes) done(false);
    };
    const onEnd = () => done(true);
    const onClose = () => done(req.complete);
    const timer = setTimeout(done, maxMs, false);
    req.on('data', onData).once('end', onEnd).once('close', onClose);
    req.resume();
  });
}
