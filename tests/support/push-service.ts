import { createECDH, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import type { PushPayload } from '../../contracts/index.ts';

const ece = createRequire(import.meta.url)('http_ece') as { decrypt(body: Buffer, params: { version: string; privateKey: ECDH; authSecret: string }): Buffer };

/** One notification as the push service got it: decrypted, its VAPID token checked. */
export interface ReceivedPush {
  device: string;
  at: number;
  headers: IncomingHttpHeaders;
  /** Bytes on the wire, encrypted. */
  size: number;
  payload: PushPayload;
  vapid: { aud: string; sub: string; exp: number; publicKey: string };
}

/** What the service answers a device's next request with: a status and headers, or no answer at all. */
export type Answer = { status: number; headers?: Record<string, string> } | 'hang';

export interface FakePushService {
  /** A new device: the subscription a browser would hand over, with keys made here (ECDH P-256). */
  device(name: string): { endpoint: string; keys: { p256dh: string; auth: string } };
  received: ReceivedPush[];
  /** Requests per device, answered or not. */
  requests: Map<string, number>;
  /** Every request: device, arrival time, the answer given. */
  log: Array<{ device: string; at: number; answer: Answer }>;
  /** Answers queued for a device, used in order; 201 once they run out. */
  answer(device: string, ...answers: Answer[]): void;
  close(): Promise<void>;
}

/**
 * Plays a Web Push service on loopback: decrypts every notification (aes128gcm, RFC 8291) with the
 * device's private key, and verifies its VAPID JWT (ES256) with the key the request names, which
 * must be the server's.
 */
export async function startFakePushService(expectedPublicKey: string): Promise<FakePushService> {
  const devices = new Map<string, { ecdh: ECDH; auth: string }>();
  const answers = new Map<string, Answer[]>();
  const received: ReceivedPush[] = [];
  const requests = new Map<string, number>();
  const log: FakePushService['log'] = [];
  const hanging = new Set<ServerResponse>();

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const name = decodeURIComponent(req.url!.replace(/^\/push\//, ''));
        requests.set(name, (requests.get(name) ?? 0) + 1);
        const answer = answers.get(name)?.shift() ?? { status: 201 };
        log.push({ device: name, at: Date.now(), answer });
        if (answer === 'hang') return void hanging.add(res);
        const device = devices.get(name);
        if (!device) return void res.writeHead(404).end();
        if (answer.status < 300) {
          const body = Buffer.concat(chunks);
          const plain = ece.decrypt(body, { version: 'aes128gcm', privateKey: device.ecdh, authSecret: device.auth });
          received.push({ device: name, at: Date.now(), headers: req.headers, size: body.length, payload: JSON.parse(plain.toString()) as PushPayload, vapid: await checkVapid(req.headers.authorization ?? '', expectedPublicKey) });
        }
        res.writeHead(answer.status, answer.headers).end();
      })().catch((err: unknown) => {
        console.error('fake push service:', err);
        res.writeHead(400).end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    device(name) {
      const ecdh = createECDH('prime256v1');
      ecdh.generateKeys();
      const auth = randomBytes(16).toString('base64url');
      devices.set(name, { ecdh, auth });
      return { endpoint: `${base}/push/${encodeURIComponent(name)}`, keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth } };
    },
    received,
    requests,
    log,
    answer(device, ...list) {
      answers.set(device, [...(answers.get(device) ?? []), ...list]);
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** `Authorization: vapid t=<jwt>, k=<public key>`: the JWT must verify with that key, and the key be the server's. */
async function checkVapid(authorization: string, expectedPublicKey: string): Promise<ReceivedPush['vapid']> {
  const [, token, key] = /^vapid t=([^,\s]+),\s*k=(\S+)$/.exec(authorization) ?? [];
  if (!token || !key) throw new Error(`no VAPID authorization: ${authorization}`);
  if (key !== expectedPublicKey) throw new Error('the VAPID key is not the server’s');
  const point = Buffer.from(key, 'base64url');
  const jwk = { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33, 65).toString('base64url') };
  if (decodeProtectedHeader(token).alg !== 'ES256') throw new Error('VAPID token is not ES256');
  await jwtVerify(token, await importJWK(jwk, 'ES256'));
  const claims = decodeJwt(token) as { aud: string; sub: string; exp: number };
  return { aud: claims.aud, sub: claims.sub, exp: claims.exp, publicKey: key };
}
