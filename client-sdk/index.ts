/**
 * Parley's typed client: `createChatClient({ url, token })` gives the tRPC client of the
 * server's router. Queries and mutations go over batched HTTP, subscriptions over one
 * WebSocket that reconnects by itself and resumes each room subscription after its last event id.
 * Beside the procedures: `connection` (the WebSocket's state, for a "reconnecting…" banner),
 * `outbox` (sends that survive being offline), `reads` (read markers, paced per room),
 * `deliveries` (delivered markers, set by the client itself for every message its streams bring) and `close()`.
 *
 * @example
 * ```ts
 * const chat = createChatClient({ url: 'http://127.0.0.1:3000', token });
 * const room = await chat.rooms.open.mutate({ otherUserId: 'bob' });
 * const page = await chat.messages.list.query({ roomId: room.id, direction: 'backward' });
 * chat.messages.onEvent.subscribe({ roomId: room.id, lastEventId: page.lastEventId }, { onData: ({ data }) => console.log(data) });
 * await chat.outbox.send(room.id, 'hi');
 * await chat.reads.mark(room.id, page.items.at(-1)?.seq ?? 0);
 * ```
 */
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient, type TRPCLink, type TRPCWebSocketClient } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';
import { TRPC_BATCH_MAX_ITEMS } from '../contracts/index.ts';
import type { AppRouter } from './app-router.ts';
import { createConnectionTracker, type Connection } from './connection.ts';
import { createEndpoints, failoverFetch } from './endpoints.ts';
import { createOutbox, type Outbox } from './outbox.ts';
import { createReadMarkers, type ReadMarkers } from './read-markers.ts';
import { receivedMessagesLink, subjectOf } from './delivery-receipts.ts';

export type { AppRouter };
export * from '../contracts/index.ts';
export { closeReasonOf, type Connection, type ConnectionState, type ConnectionStatus } from './connection.ts';
export { isRetryable, parleyCodeOf, parleyErrorOf, TRPCClientError } from './errors.ts';
export type { Outbox, PendingMessage } from './outbox.ts';
export type { ReadMarkers } from './read-markers.ts';

/**
 * What the client needs of a WebSocket class: the browser's, Node's global one, or the `ws`
 * package's (whose events are typed differently from the DOM's, so it is not a `typeof WebSocket`).
 */
export interface WebSocketClass {
  new (url: string, protocols?: string | string[]): { readonly readyState: number; send(data: string): void; close(code?: number, reason?: string): void };
  readonly OPEN: number;
  readonly CLOSING: number;
  readonly CLOSED: number;
}

/** A JWT, or a function returning a fresh one (called per HTTP request and per WebSocket connect). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ChatClientOptions {
  /**
   * The server's base URL, e.g. `http://127.0.0.1:3000`; or the addresses of several instances of
   * one service, e.g. `['http://a:3000', 'http://b:3000']`: the client uses one at a time and
   * moves to the next when the WebSocket drops or an HTTP call gets no answer or a 503, and its
   * subscriptions resume there from their last event id.
   */
  url: string | readonly [string, ...string[]];
  token: TokenSource;
  /**
   * A WebSocket class for runtimes without a global one, e.g. on Node 20 `import WebSocket from 'ws'`.
   * Default: the global `WebSocket` (browsers, Node 22+).
   */
  WebSocket?: WebSocketClass;
  /** Delay before reconnect attempt `n`, in ms. Default: 250 ms doubling up to 10 s. */
  retryDelayMs?: (attempt: number) => number;
  /** Called when the WebSocket closes, with its close code (see README "Errors"). */
  onClose?: (cause?: { code?: number }) => void;
  /** Least time between two `reads.mark` calls to the server for one room, in ms. Default 1,000. */
  markReadEveryMs?: number;
  /**
   * Mark the other participant's messages delivered as `messages.onEvent` and `rooms.onEvent`
   * bring them (paced per room like `reads`, at `markReadEveryMs`). Default true.
   */
  deliveryReceipts?: boolean;
}

/** The typed tRPC client, plus the connection state, the outbox, paced read markers and `close()`. */
export type ChatClient = TRPCClient<AppRouter> & {
  /** Closes the WebSocket; subscriptions end, the outbox stops retrying. */
  close(): Promise<void>;
  /** The WebSocket's state: `idle`, `connecting`, `open` or `reconnecting` (with the close reason). */
  connection: Connection;
  /** Sends queued while offline and retried with their clientId, in order; see {@link Outbox}. */
  outbox: Outbox;
  /** Read markers for a screen to move as it shows messages: the newest wins, calls spaced per room; see {@link ReadMarkers}. */
  reads: ReadMarkers;
  /** Delivered markers, paced like `reads`; moved by the client itself unless `deliveryReceipts: false`. */
  deliveries: ReadMarkers;
};

/** Inputs of every procedure, e.g. `RouterInputs['messages']['send']`. */
export type RouterInputs = inferRouterInputs<AppRouter>;
/** Outputs of every procedure, e.g. `RouterOutputs['rooms']['list']`. */
export type RouterOutputs = inferRouterOutputs<AppRouter>;

/** Creates a client for one user. */
export function createChatClient(options: ChatClientOptions): ChatClient {
  const endpoints = createEndpoints(options.url);
  const linkBase = endpoints.current();
  /** The instance the WebSocket last connected to. */
  let socketBase = linkBase;
  /** The caller, from the token last used: its own messages are not marked delivered. */
  let me: string | undefined;
  const getToken = async () => {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    me = subjectOf(token);
    return token;
  };
  const connection = createConnectionTracker();
  // Built on the first subscription: a client that only queries and sends needs no WebSocket
  // class at all (Node 20 has none built in).
  let wsClient: TRPCWebSocketClient | undefined;
  const socket = () => {
    if (wsClient) return wsClient;
    wsClient = createWSClient({
      url: () => {
        socketBase = endpoints.current();
        return `${socketBase.replace(/^http/, 'ws')}/trpc`;
      },
      connectionParams: async () => ({ token: await getToken() }),
      // Close the socket when no subscription needs it.
      lazy: { enabled: true, closeMs: 5_000 },
      retryDelayMs: options.retryDelayMs ?? ((attempt) => Math.min(250 * 2 ** attempt, 10_000)),
      // tRPC types the option as the DOM's class but uses only what WebSocketClass names and the
      // standard `addEventListener`, which `ws` implements too.
      ...(options.WebSocket ? { WebSocket: options.WebSocket as unknown as typeof WebSocket } : {}),
      onClose: (cause) => {
        connection.closed(cause?.code);
        // 1000 is our own close (idle or `close()`); anything else may be the instance going away.
        if (cause?.code !== 1000) endpoints.failed(socketBase);
        options.onClose?.(cause);
      },
    });
    connection.follow(wsClient);
    return wsClient;
  };
  const subscriptions: TRPCLink<AppRouter> = (runtime) => {
    let link: ReturnType<TRPCLink<AppRouter>> | undefined;
    return (call) => (link ??= wsLink<AppRouter>({ client: socket() })(runtime))(call);
  };
  const received = receivedMessagesLink<AppRouter>(({ roomId, seq, sender }) => {
    if (options.deliveryReceipts !== false && sender !== me) void deliveries.mark(roomId, seq).catch(() => {});
  });
  const client = createTRPCClient<AppRouter>({
    links: [
      received,
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: subscriptions,
        false: httpBatchLink({
          url: `${linkBase}/trpc`,
          fetch: failoverFetch(endpoints, linkBase),
          maxItems: TRPC_BATCH_MAX_ITEMS,
          headers: async () => ({ authorization: `Bearer ${await getToken()}` }),
        }),
      }),
    ],
  });
  const outbox = createOutbox({ send: (input) => client.messages.send.mutate(input) });
  // The server is back when the socket is: retry what waited, without waiting for the timer.
  connection.subscribe((state) => state.status === 'open' && outbox.flush());
  const reads = createReadMarkers({ markRead: (input) => client.messages.markRead.mutate(input), everyMs: options.markReadEveryMs });
  const deliveries = createReadMarkers({ markRead: (input) => client.messages.markDelivered.mutate(input), everyMs: options.markReadEveryMs });
  const close = async () => {
    outbox.close();
    reads.close();
    deliveries.close();
    await wsClient?.close();
  };
  const extras: Record<PropertyKey, unknown> = { close, connection, outbox, reads, deliveries };
  // The tRPC client is a proxy of procedure paths; the extras are served beside it.
  return new Proxy(client, {
    get: (target, key, receiver) => (key in extras ? extras[key] : Reflect.get(target, key, receiver)),
  }) as ChatClient;
}
