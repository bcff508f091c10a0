import { TRPC_BATCH_MAX_ITEMS } from '../contracts/index.ts';
/**
 * One client per virtual user on each surface, reduced to what the scenarios need: a send that
 * resolves when the server has stored the message, and a stream of message contents received.
 */
import { createTRPCClient, createWSClient, httpBatchLink, wsLink, type TRPCClient } from '@trpc/client';
import { Agent, request } from 'node:http';
import WebSocket from 'ws';
import type { AppRouter } from '../server/transport/trpc/app.router.ts';

export type Surface = 'trpc-http' | 'trpc-http-wire' | 'trpc-ws' | 'trpc-wire' | 'rest' | 'legacy-ws';

export interface Endpoint {
  baseUrl: string;
  token: string;
  user: string;
  other: string;
  roomId: string;
}

export interface SurfaceClient {
  send(content: string): Promise<void>;
  /**
   * Called for every message event this client receives (tRPC: only after `subscribe`), with the
   * message's `created_at` (the storing transaction's start, on the database's clock) when it has one.
   */
  onMessage?: (content: string, id: string, createdAt?: string) => void;
  subscribe(): Promise<void>;
  close(): Promise<void>;
}

const wsUrl = (base: string) => base.replace(/^http/, 'ws');

function trpcClient(e: Endpoint, transport: 'http' | 'ws') {
  const ws = createWSClient({ url: `${wsUrl(e.baseUrl)}/trpc`, connectionParams: async () => ({ token: e.token }), lazy: { enabled: true, closeMs: 60_000 } });
  // The server refuses batches past TRPC_BATCH_MAX_ITEMS, as it does the SDK's.
  const http = httpBatchLink({ url: `${e.baseUrl}/trpc`, maxItems: TRPC_BATCH_MAX_ITEMS, headers: () => ({ authorization: `Bearer ${e.token}` }) });
  const trpc: TRPCClient<AppRouter> = createTRPCClient<AppRouter>({ links: [transport === 'http' ? http : wsLink({ client: ws })] });
  const sub = createTRPCClient<AppRouter>({ links: [wsLink({ client: ws })] });
  const self: SurfaceClient = {
    async send(content) {
      await trpc.messages.send.mutate({ roomId: e.roomId, content });
    },
    subscribe: () =>
      new Promise<void>((resolve, reject) => {
        sub.messages.onEvent.subscribe(
          { roomId: e.roomId },
          {
            onStarted: () => resolve(),
            onData: ({ id, data }) => data.type === 'message' && self.onMessage?.(data.message.content, id, data.message.created_at),
            onError: reject,
          },
        );
      }),
    close: () => ws.close(),
  };
  return self;
}

/**
 * tRPC over WebSocket spoken on a plain `ws` socket (the messages `@trpc/client`'s wsLink sends:
 * connection params, `mutation`, `subscription`), parsed as cheaply as the ws/chat client parses
 * its frames. It measures the server's tRPC surface without the official client's own cost, which
 * on a machine whose two cores the generator shares with the server weighs on the latency measured.
 */
async function trpcWireClient(e: Endpoint): Promise<SurfaceClient> {
  const socket = new WebSocket(`${wsUrl(e.baseUrl)}/trpc?connectionParams=1`);
  const calls = new Map<number, { resolve(data: unknown): void; reject(err: Error): void }>();
  let next = 1;
  const call = (method: 'mutation' | 'subscription', path: string, input: unknown) =>
    new Promise<unknown>((resolve, reject) => {
      const id = next++;
      calls.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params: { path, input } }));
    });
  let subscription = -1;
  const self: SurfaceClient = {
    async send(content) {
      await call('mutation', 'messages.send', { roomId: e.roomId, content });
    },
    subscribe: async () => {
      subscription = next;
      await call('subscription', 'messages.onEvent', { roomId: e.roomId });
    },
    close: async () => socket.close(),
  };
  socket.on('message', (raw) => {
    const frame = JSON.parse(String(raw)) as { id?: number; result?: { type: string; id?: string; data?: unknown }; error?: { message: string } };
    if (frame.id === subscription && frame.result?.type === 'data') {
      // A tracked event: `{ id, data }`, as the official client hands it to `onData`.
      const event = (frame.result.data as { data: { type: string; message?: { content: string; created_at: string } } }).data;
      if (event.type === 'message') self.onMessage?.(event.message!.content, frame.result.id ?? '', event.message!.created_at);
      return;
    }
    const waiting = frame.id === undefined ? undefined : calls.get(frame.id);
    if (!waiting) return;
    // A subscription's call settles on `started`; a mutation's on its result.
    if (frame.error) waiting.reject(new Error(`trpc wire: ${frame.error.message}`));
    else waiting.resolve(frame.result?.data);
    calls.delete(frame.id!);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`trpc wire: HTTP ${res.statusCode}`)));
  });
  socket.send(JSON.stringify({ method: 'connectionParams', data: { token: e.token } }));
  socket.on('error', () => {});
  socket.on('close', () => {
    for (const w of calls.values()) w.reject(new Error('trpc wire: closed'));
    calls.clear();
  });
  return self;
}

/**
 * One kept-alive connection per virtual user, requests written with `node:http`: the server's
 * capacity, not `fetch`'s (its streams and Response objects cost the generator, which shares the
 * machine's two cores with the server, several times what the request costs the server).
 */
function plainPost(url: string, headers: Record<string, string>) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const post = (body: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  return { post, close: () => agent.destroy() };
}

/**
 * A send per POST over `plainPost`: REST (`201`), or tRPC over HTTP spoken the same way (a call per
 * request, as the link sends a batch of one; `200`): the server's side of `trpc-http` without the
 * official client's `fetch`.
 */
function plainSender(name: string, url: string, token: string, bodyOf: (content: string) => unknown, ok: number): SurfaceClient {
  const http = plainPost(url, { authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  return {
    async send(content) {
      const res = await http.post(JSON.stringify(bodyOf(content)));
      if (res.status !== ok) throw new Error(`${name} send: HTTP ${res.status} ${res.body.slice(0, 200)}`);
    },
    subscribe: () => Promise.reject(new Error(`${name} has no live feed here`)),
    close: async () => http.close(),
  };
}

const restClient = (e: Endpoint) => plainSender('REST', `${e.baseUrl}/${e.roomId}/messages/`, e.token, (content) => ({ content, chat_room: e.roomId, sender: e.user }), 201);
const trpcHttpWireClient = (e: Endpoint) => plainSender('trpc http wire', `${e.baseUrl}/trpc/messages.send`, e.token, (content) => ({ roomId: e.roomId, content }), 200);

/** The legacy socket: a send is acknowledged by the server's `new_message` echo of it (or an error frame). */
async function legacyWsClient(e: Endpoint): Promise<SurfaceClient> {
  const socket = new WebSocket(`${wsUrl(e.baseUrl)}/ws/chat/${encodeURIComponent(e.user)}/${encodeURIComponent(e.other)}/?token=${e.token}`);
  const waiting = new Map<string, { resolve(): void; reject(err: Error): void }>();
  const order: string[] = [];
  const self: SurfaceClient = {
    send(content) {
      return new Promise<void>((resolve, reject) => {
        waiting.set(content, { resolve, reject });
        order.push(content);
        socket.send(JSON.stringify({ action: 'new_message', message: content, sender: e.user, chat_room: e.roomId, other_user: e.other }));
      });
    },
    subscribe: async () => {},
    close: async () => socket.close(),
  };
  socket.on('message', (raw) => {
    const frame = JSON.parse(String(raw));
    if (frame.action === 'new_message') {
      const content: string = frame.message.content;
      if (frame.message.sender === e.user) {
        const w = waiting.get(content);
        if (w) {
          waiting.delete(content);
          order.splice(order.indexOf(content), 1);
          w.resolve();
        }
      }
      self.onMessage?.(content, frame.message.id, frame.message.created_at);
    } else if (frame.action === 'error') {
      // Error frames carry no reference to the frame they refuse: blame the oldest unanswered send.
      const content = order.shift();
      if (content !== undefined) {
        waiting.get(content)?.reject(new Error(`legacy ws: ${frame.code} ${frame.detail}`));
        waiting.delete(content);
      }
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`legacy ws: HTTP ${res.statusCode}`)));
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    for (const w of waiting.values()) w.reject(new Error('legacy ws closed'));
    waiting.clear();
  });
  return self;
}

export async function connect(surface: Surface, e: Endpoint): Promise<SurfaceClient> {
  if (surface === 'trpc-http') return trpcClient(e, 'http');
  if (surface === 'trpc-ws') return trpcClient(e, 'ws');
  if (surface === 'trpc-wire') return trpcWireClient(e);
  if (surface === 'trpc-http-wire') return trpcHttpWireClient(e);
  if (surface === 'rest') return restClient(e);
  return legacyWsClient(e);
}
