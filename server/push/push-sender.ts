import http from 'node:http';
import https from 'node:https';
import webpush from 'web-push';
import { retryAfterMs } from '../infra/retry-after.ts';
import { checkEndpointForm, EndpointRefused, publicOnlyLookup, type EndpointPolicy } from './endpoint-guard.ts';

/** A device subscription as stored. */
export interface PushTarget {
  endpoint: string;
  p256dh: string;
  auth: string;
}

export interface PushMessage {
  /** The plaintext (JSON) before encryption. */
  payload: string;
  /** Replaces a pending notification with the same topic at the push service (a room's id). */
  topic: string;
  ttlSeconds: number;
}

/** How a push service answered, reduced to what the caller does next. */
export type PushResult =
  | { outcome: 'accepted'; status: number }
  /** The subscription is gone for good (404, 410): delete it. */
  | { outcome: 'gone'; status: number }
  /** Try again later (429, 5xx, no answer): `retryAfterMs` when the service said. */
  | { outcome: 'retry'; status?: number; retryAfterMs?: number; reason: string }
  /** Refused for a reason retrying does not fix (other 4xx, a redirect, a refused address). */
  | { outcome: 'refused'; status?: number; reason: string };

/**
 * Sends one notification to one device. Web Push today; FCM or APNs senders implement the same
 * interface for their tokens.
 */
export interface PushSender {
  send(target: PushTarget, message: PushMessage): Promise<PushResult>;
  /** Lets go of idle connections. */
  close?(): void;
}

export interface VapidKeys {
  publicKey: string;
  privateKey: string;
  subject: string;
}

export interface WebPushSenderOptions extends EndpointPolicy {
  vapid: VapidKeys;
  /** The whole request, connect to answer; a service that hangs past it is retried later. */
  timeoutMs: number;
}

/** aes128gcm adds 86 header bytes, a 16-byte tag and a padding delimiter to the plaintext. */
export const MAX_ENCRYPTED_BYTES = 4096;
export const ENCRYPTION_OVERHEAD_BYTES = 103;

/** How long a VAPID token is made to last; push services accept up to 24 h. */
const VAPID_TTL_SECONDS = 12 * 3600;
/** A cached token is made again this long before it expires, so none arrives expired. */
const VAPID_RENEW_SECONDS = 3600;
/** Requests in flight to one push service, at most (each on its own connection). */
const SOCKETS_PER_ORIGIN = 64;

/**
 * Web Push with VAPID: `web-push` encrypts (RFC 8291) and signs; the request itself is sent here, so
 * the endpoint's address is checked on the connection that uses it (a kept-alive connection was
 * checked when it was made), no redirect is followed, and every request is bounded in time.
 *
 * One push service (an origin) serves many devices: its connections are kept alive and reused,
 * and its VAPID token, which names only the origin, is signed once and reused until near expiry.
 */
export function createWebPushSender({ vapid, timeoutMs, allowLocal }: WebPushSenderOptions): PushSender {
  const lookup = publicOnlyLookup({ allowLocal });
  const agents = new Map<string, http.Agent>();
  const tokens = new Map<string, { authorization: string; renewAt: number }>();

  function agentFor(url: URL) {
    let agent = agents.get(url.origin);
    if (!agent) {
      const options = { keepAlive: true, maxSockets: SOCKETS_PER_ORIGIN, maxFreeSockets: SOCKETS_PER_ORIGIN, scheduling: 'lifo' as const };
      agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
      agents.set(url.origin, agent);
    }
    return agent;
  }

  function authorizationFor(audience: string) {
    const now = Math.floor(Date.now() / 1000);
    const cached = tokens.get(audience);
    if (cached && now < cached.renewAt) return cached.authorization;
    const expiration = now + VAPID_TTL_SECONDS;
    const { Authorization } = webpush.getVapidHeaders(audience, vapid.subject, vapid.publicKey, vapid.privateKey, 'aes128gcm', expiration) as { Authorization: string };
    tokens.set(audience, { authorization: Authorization, renewAt: expiration - VAPID_RENEW_SECONDS });
    return Authorization;
  }

  return {
    async send(target, message) {
      let url: URL;
      try {
        url = checkEndpointForm(target.endpoint, { allowLocal });
      } catch (err) {
        return { outcome: 'refused', reason: (err as Error).message };
      }
      let body: Buffer;
      let authorization: string;
      try {
        body = webpush.encrypt(target.p256dh, target.auth, message.payload, 'aes128gcm').cipherText;
        authorization = authorizationFor(url.origin);
      } catch (err) {
        // Keys a browser would never hand over (the wrong length, not on the curve).
        return { outcome: 'refused', reason: (err as Error).message };
      }
      if (body.length > MAX_ENCRYPTED_BYTES) return { outcome: 'refused', reason: `payload of ${body.length} bytes after encryption` };
      const headers = {
        TTL: message.ttlSeconds,
        'Content-Length': body.length,
        'Content-Type': 'application/octet-stream',
        'Content-Encoding': 'aes128gcm',
        Authorization: authorization,
        Urgency: 'normal',
        Topic: message.topic,
      };
      return new Promise<PushResult>((resolve) => {
        const request = (url.protocol === 'https:' ? https : http).request(
          url,
          { method: 'POST', headers, timeout: timeoutMs, ...(lookup ? { lookup } : {}), agent: agentFor(url) },
          (res) => {
            res.resume();
            const status = res.statusCode ?? 0;
            resolve(resultOf(status, res.headers['retry-after']));
          },
        );
        // `timeout` only watches the socket going idle; this bounds the whole exchange.
        const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        request.on('close', () => clearTimeout(deadline));
        request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        request.on('error', (err) => {
          clearTimeout(deadline);
          resolve(err instanceof EndpointRefused ? { outcome: 'refused', reason: err.message } : { outcome: 'retry', reason: err.message });
        });
        request.end(body);
      });
    },
    close() {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
    },
  };
}

function resultOf(status: number, retryAfter: string | string[] | undefined): PushResult {
  if (status >= 200 && status < 300) return { outcome: 'accepted', status };
  if (status === 404 || status === 410) return { outcome: 'gone', status };
  if (status === 429 || status >= 500) {
    const after = retryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    return { outcome: 'retry', status, reason: `push service answered ${status}`, ...(after === undefined ? {} : { retryAfterMs: after }) };
  }
  return { outcome: 'refused', status, reason: status >= 300 && status < 400 ? `push service redirected (${status}); not followed` : `push service answered ${status}` };
}
