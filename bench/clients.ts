import { TRPC_BATCH_MAX_ITEMS } from '../contracts/index.ts';
/**
 * One client per virtual user on each surface, reduced to what the scenarios need: a send that
 * resolves when the server has stored the message, and a stream of message contents received.
 */
import { createTRPCClient, createWSClient, httpBatchLink, wsLink, type TRPCClient } from '@trpc/client';
import WebSocket from 'ws';
import type { AppRouter } from '../server/transport/trpc/app.router.ts';

export type Surface = 'trpc-http' | 'trpc-ws' | 'rest' | 'legacy-ws';

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

function restClient(e: Endpoint): SurfaceClient {
  const url = `${e.baseUrl}/${e.roomId}/messages/`;
  const headers = { authorization: `Bearer ${e.token}`, 'content-type': 'application/json' };
  return {
    async send(content) {
      const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ content, chat_room: e.roomId, sender: e.user }) });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`REST send: HTTP ${res.status}`);
    },
    subscribe: () => Promise.reject(new Error('REST has no live feed')),
    close: async () => {},
  };
}

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
  if (surface === 'rest') return restClient(e);
  return legacyWsClient(e);
}
