import { jsonEncoder } from '@trpc/server/adapters/ws';
import type { WebSocket } from 'ws';
import { ParleyError } from '../../../contracts/index.ts';
import { trpcErrorShape } from '../errors/trpc-error-shape.ts';
import type { SocketSession } from '../ws/socket-session.ts';

type Encoder = typeof jsonEncoder;
type CallId = string | number;

interface Call {
  id?: unknown;
  jsonrpc?: unknown;
  method?: unknown;
  params?: { path?: unknown };
}

interface Answer {
  id?: CallId | null;
  jsonrpc?: string;
  error?: unknown;
  result?: { type?: string; id?: string; data?: { id?: string; data?: unknown } };
}

/** Serialized event payloads, shared by every socket: one live event reaches many subscribers. */
export type EventTextCache = WeakMap<object, string>;

const isCall = (msg: unknown): msg is Call & { id: CallId } =>
  typeof msg === 'object' && msg !== null && (typeof (msg as Call).id === 'number' || typeof (msg as Call).id === 'string');

/**
 * tRPC runs every request of a socket at once and buffers every answer. This encoder sees each
 * call arrive and each answer leave, so a socket holds at most `maxInflight` queries and
 * mutations (the session pauses reading, and refuses what was already read past twice that) and
 * at most `maxSubscriptions` subscriptions; a call over a limit is answered with RATE_LIMITED.
 */
export function limitTrpcCalls(socket: WebSocket, session: SocketSession, maxSubscriptions: number, eventTexts: EventTextCache): Encoder {
  const calls = new Set<CallId>();
  const subscriptions = new Set<CallId>();

  const refuse = (call: Call & { id: CallId }, parley: ParleyError) => {
    const path = typeof call.params?.path === 'string' ? call.params.path : undefined;
    socket.send(jsonEncoder.encode({ id: call.id, jsonrpc: call.jsonrpc === '2.0' ? '2.0' : undefined, error: trpcErrorShape(parley, path) }) as string);
    return false;
  };

  function admit(msg: unknown) {
    if (!isCall(msg) || (msg.method !== 'query' && msg.method !== 'mutation' && msg.method !== 'subscription')) return true;
    // Ids key the accounting below, so a call may not reuse the id of one still running.
    if (calls.has(msg.id) || subscriptions.has(msg.id)) return refuse(msg, new ParleyError('INVALID_INPUT', `Duplicate id ${msg.id}`));
    if (msg.method === 'subscription') {
      if (subscriptions.size >= maxSubscriptions) return refuse(msg, new ParleyError('RATE_LIMITED', `At most ${maxSubscriptions} subscriptions per socket.`));
      subscriptions.add(msg.id);
      return true;
    }
    if (!session.begin()) return refuse(msg, new ParleyError('RATE_LIMITED', 'Too many requests in flight on this socket; wait for answers.'));
    calls.add(msg.id);
    return true;
  }

  return {
    decode(data) {
      const decoded = jsonEncoder.decode(data);
      return Array.isArray(decoded) ? decoded.filter(admit) : admit(decoded) ? decoded : [];
    },
    encode(message) {
      const { id, jsonrpc, error, result } = message as Answer;
      if (id !== undefined && id !== null) {
        if (calls.delete(id)) session.end();
        else if (error !== undefined || result?.type === 'stopped') subscriptions.delete(id);
        else if (result?.type === 'data' && subscriptions.has(id) && typeof result.data?.data === 'object' && result.data.data !== null) {
          // A tracked subscription event: its payload is serialized once for all subscribers.
          const event = result.data.data;
          let text = eventTexts.get(event);
          if (text === undefined) eventTexts.set(event, (text = JSON.stringify(event)));
          const trackedId = JSON.stringify(result.id);
          return `{"id":${JSON.stringify(id)},${jsonrpc ? '"jsonrpc":"2.0",' : ''}"result":{"type":"data","id":${trackedId},"data":{"id":${JSON.stringify(result.data.id)},"data":${text}}}}`;
        }
      }
      return jsonEncoder.encode(message);
    },
  };
}
