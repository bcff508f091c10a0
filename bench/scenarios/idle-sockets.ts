/**
 * Idle sockets of both surfaces: tRPC with one subscription and legacy `ws/chat`. The clients'
 * side of the `idle` section (and of bench/idle-heap.ts): opening them, holding them, and timing
 * a message to one room while they are all connected.
 */
import WebSocket from 'ws';

export type IdleKind = 'trpc' | 'legacy';

export interface IdleSocketSpec {
  kind: IdleKind;
  baseUrl: string;
  user: string;
  peer: string;
  roomId: string;
  token: string;
  /** The client side's source address (127.0.0.x): one address has ~28k ephemeral ports towards one server port. */
  localAddress?: string;
  /** Hears the content of every message the socket is sent. */
  onMessage?: (content: string) => void;
}

/** Opens one socket; resolves once it is subscribed (tRPC: `started`; ws/chat: the upgrade, after which its feed is open). */
export function openIdleSocket(spec: IdleSocketSpec): Promise<WebSocket> {
  const ws = spec.baseUrl.replace(/^http/, 'ws');
  const url = spec.kind === 'trpc' ? `${ws}/trpc?connectionParams=1` : `${ws}/ws/chat/${spec.user}/${spec.peer}/?token=${encodeURIComponent(spec.token)}`;
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, ...(spec.localAddress ? { localAddress: spec.localAddress } : {}) });
    const timer = setTimeout(() => (socket.terminate(), reject(new Error(`${spec.kind} socket: not subscribed in 60 s`))), 60_000);
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
    socket.once('unexpected-response', (_req, res) => (clearTimeout(timer), socket.terminate(), reject(new Error(`${spec.kind} upgrade refused: HTTP ${res.statusCode}`))));
    socket.on('open', () => {
      if (spec.kind === 'legacy') return void (clearTimeout(timer), resolve(socket));
      socket.send(JSON.stringify({ method: 'connectionParams', data: { token: spec.token } }));
      socket.send(JSON.stringify({ id: 1, method: 'subscription', params: { path: 'messages.onEvent', input: { roomId: spec.roomId } } }));
    });
    socket.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (spec.kind === 'legacy') {
        if (msg.action === 'new_message') spec.onMessage?.(msg.message.content);
        return;
      }
      if (msg.error) return void (clearTimeout(timer), socket.terminate(), reject(new Error(JSON.stringify(msg.error.message ?? msg.error))));
      if (msg.result?.type === 'started') return void (clearTimeout(timer), resolve(socket));
      // Tracked events arrive as `{ id, data: event }`.
      const event = msg.result?.type === 'data' ? (msg.result.data?.data ?? msg.result.data) : undefined;
      if (event?.type === 'message') spec.onMessage?.(event.message.content);
    });
  });
}
