/**
 * Parley's typed client: `createChatClient({ url, token })` gives the tRPC client of the
 * server's router. Queries and mutations go over batched HTTP, subscriptions over one
 * WebSocket that reconnects by itself and resumes each subscription after its last event id.
 *
 * @example
 * ```ts
 * const chat = createChatClient({ url: 'http://127.0.0.1:3000', token });
 * const room = await chat.rooms.open.mutate({ otherUserId: 'bob' });
 * chat.messages.onEvent.subscribe({ roomId: room.id }, { onData: ({ data }) => console.log(data) });
 * await chat.messages.send.mutate({ roomId: room.id, content: 'hi' });
 * ```
 */
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { TRPC_BATCH_MAX_ITEMS } from '../contracts/index.ts';
import type { AppRouter } from '../server/trpc/app.router.ts';

export type { AppRouter };
export * from '../contracts/index.ts';

/** A JWT, or a function returning a fresh one (called per HTTP request and per WebSocket connect). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ChatClientOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:3000`. */
  url: string;
  token: TokenSource;
  /** A WebSocket class for runtimes without a global one. */
  WebSocket?: typeof WebSocket;
  /** Delay before reconnect attempt `n`, in ms. Default: 250 ms doubling up to 10 s. */
  retryDelayMs?: (attempt: number) => number;
  /** Called when the WebSocket closes, with its close code (see README "Errors"). */
  onClose?: (cause?: { code?: number }) => void;
}

/** The typed tRPC client, plus `close()` for its WebSocket. */
export type ChatClient = TRPCClient<AppRouter> & {
  /** Closes the WebSocket; subscriptions end. */
  close(): Promise<void>;
};

/** Inputs of every procedure, e.g. `RouterInputs['messages']['send']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Outputs of every procedure, e.g. `RouterOutputs['rooms']['list']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

/** Creates a client for one user. */
export function createChatClient(options: ChatClientOptions): ChatClient {
  const base = options.url.replace(/\/+$/, '');
  const getToken = async () => (typeof options.token === 'function' ? await options.token() : options.token);
  const wsClient = createWSClient({
    url: `${base.replace(/^http/, 'ws')}/trpc`,
    connectionParams: async () => ({ token: await getToken() }),
    // Open the socket on the first subscription, not for clients that only use HTTP.
    lazy: { enabled: true, closeMs: 5_000 },
    retryDelayMs: options.retryDelayMs ?? ((attempt) => Math.min(250 * 2 ** attempt, 10_000)),
    ...(options.WebSocket ? { WebSocket: options.WebSocket } : {}),
    ...(options.onClose ? { onClose: options.onClose } : {}),
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: wsLink({ client: wsClient }),
        false: httpBatchLink({
          url: `${base}/trpc`,
          maxItems: TRPC_BATCH_MAX_ITEMS,
          headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
        }),
      }),
    ],
  });
  const close = async () => {
    await wsClient.close();
  };
  // The tRPC client is a proxy of procedure paths; `close` is served beside it.
  return new Proxy(client, {
    get: (target, key, receiver) => (key === 'close' ? close : Reflect.get(target, key, receiver)),
  }) as ChatClient;
}
