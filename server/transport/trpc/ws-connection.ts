import { TRPCError, type AnyRouter, type TRPCProcedureType } from '@trpc/server';
import {
  callProcedure,
  getErrorShape,
  getTRPCErrorFromUnknown,
  isAsyncIterable,
  isTrackedEnvelope,
  parseConnectionParamsFromUnknown,
  parseTRPCMessage,
  transformTRPCResponse,
  type TRPCClientOutgoingMessage,
  type TRPCRequestInfo,
  type TRPCResponseMessage,
} from '@trpc/server/unstable-core-do-not-import';
import type { WebSocket } from 'ws';
import { StopSignal } from './stop-signal.ts';

type Context = object;

/** What every socket of a server shares. */
export interface TrpcSocketOptions {
  router: AnyRouter;
  onError(opts: { error: TRPCError; path: string | undefined; type: TRPCProcedureType | 'unknown' }): void;
}

/** Makes a socket's one context; `connectionParams` as the client sent them (null without `?connectionParams=1`). */
export type CreateSocketContext<TContext> = (connectionParams: TRPCRequestInfo['connectionParams']) => TContext | Promise<TContext>;

/** Whether the socket's context was made; the context itself is kept apart (`#ctx`). */
type ContextState = { ok: true } | { ok: false; error: TRPCError };
/** Every socket's state once its context is made: a socket does not keep the promise it was made through. */
const READY: ContextState = { ok: true };

const OPEN = 1;
const isAbortError = (cause: unknown) => typeof cause === 'object' && cause !== null && (cause as { name?: unknown }).name === 'AbortError';
const fallbackErrorShape = { code: -32603, message: 'Internal server error', data: { code: 'INTERNAL_SERVER_ERROR', httpStatus: 500 } };

/**
 * tRPC's WebSocket protocol (JSON text frames, as `@trpc/client`'s wsLink speaks it: optional
 * connectionParams first, then queries, mutations, subscriptions and their stops, one call or a
 * batch per frame; `PING` answered `PONG`), served from one object per socket.
 *
 * tRPC's own adapter keeps, for every socket, a dozen closures and a connection AbortController,
 * and for every running subscription a chain of disposable scopes, a race of promises renewed at
 * each event and a second AbortController: an idle subscription cost more than the socket it
 * rides on. Here a subscription is its StopSignal and one frame awaiting its next event.
 */
export class TrpcSocket<TContext extends Context> {
  readonly #socket: WebSocket;
  readonly #opts: TrpcSocketOptions;
  /** Let go of once called: it may close over what the upgrade request carried. */
  #createContextFor: CreateSocketContext<TContext> | undefined;
  #context: Promise<ContextState> | ContextState | undefined;
  #ctx: TContext | undefined;
  /** The first running subscription (most sockets have one), and the others by the client's id: a Map weighs more than a socket's idle subscription. */
  #firstId: number | string | undefined;
  #first: StopSignal | undefined;
  #more: Map<number | string, StopSignal> | undefined;

  constructor(socket: WebSocket, opts: TrpcSocketOptions, createContext: CreateSocketContext<TContext>, expectsConnectionParams: boolean) {
    this.#socket = socket;
    this.#opts = opts;
    this.#createContextFor = createContext;
    if (!expectsConnectionParams) this.#context = this.#createContext(() => null);
  }

  /** Every stream stops when the socket closes. */
  closed() {
    const first = this.#first;
    this.#first = this.#firstId = undefined;
    first?.abort();
    if (!this.#more) return;
    for (const subscription of this.#more.values()) subscription.abort();
    this.#more.clear();
  }

  message(data: Buffer, isBinary: boolean) {
    const text = isBinary ? undefined : data.toString('utf8');
    if (text === 'PONG') return;
    if (text === 'PING') return void this.#socket.send('PONG');
    if (!this.#context) {
      this.#context = this.#createContext(() => {
        let msg: unknown;
        try {
          if (text === undefined) throw new Error('binary frame');
          msg = JSON.parse(text);
          if (typeof msg !== 'object' || msg === null) throw new Error('Message was not an object');
        } catch (cause) {
          throw new TRPCError({ code: 'PARSE_ERROR', message: 'Malformed TRPCConnectionParamsMessage', cause });
        }
        return parseConnectionParamsFromUnknown((msg as { data?: unknown }).data);
      });
      return;
    }
    let calls: TRPCClientOutgoingMessage[];
    try {
      if (text === undefined) throw new Error('JSON uses text frames, not binary ones');
      const json: unknown = JSON.parse(text);
      const transformer = this.#opts.router._def._config.transformer;
      calls = (Array.isArray(json) ? json : [json]).map((raw) => parseTRPCMessage(raw, transformer));
    } catch (cause) {
      const error = new TRPCError({ code: 'PARSE_ERROR', cause });
      this.#respond({ id: null, error: this.#errorShape(error, 'unknown', undefined, undefined) });
      return;
    }
    const context = this.#context;
    calls.forEach((call, batchIndex) => void this.#call(call, batchIndex, context).catch((cause) => this.#report(cause, undefined, 'unknown')));
  }

  async #createContext(connectionParams: () => TRPCRequestInfo['connectionParams']): Promise<ContextState> {
    const create = this.#createContextFor!;
    this.#createContextFor = undefined;
    try {
      this.#ctx = await create(connectionParams());
      return (this.#context = READY);
    } catch (cause) {
      const error = getTRPCErrorFromUnknown(cause);
      this.#report(error, undefined, 'unknown');
      this.#respond({ id: null, error: this.#errorShape(error, 'unknown', undefined, undefined) });
      // After the answer has been written.
      setImmediate(() => this.#socket.close());
      return (this.#context = { ok: false, error });
    }
  }

  /** Drops answers once closing starts. */
  #respond(message: TRPCResponseMessage | { id: null; error: unknown }) {
    if (this.#socket.readyState !== OPEN) return;
    this.#socket.send(JSON.stringify(transformTRPCResponse(this.#opts.router._def._config, message as TRPCResponseMessage)));
  }

  #report(cause: unknown, path: string | undefined, type: TRPCProcedureType | 'unknown') {
    const error = getTRPCErrorFromUnknown(cause);
    try {
      this.#opts.onError({ error, path, type });
    } catch {
      // A failing error reporter must not take the socket down with it.
    }
    return error;
  }

  #errorShape(error: TRPCError, type: TRPCProcedureType | 'unknown', path: string | undefined, input: unknown) {
    try {
      return getErrorShape({ config: this.#opts.router._def._config, error, type, path, input, ctx: this.#ctx });
    } catch (cause) {
      this.#report(cause, path, type);
      return fallbackErrorShape;
    }
  }

  async #call(call: TRPCClientOutgoingMessage, batchIndex: number, context: Promise<ContextState> | ContextState) {
    const { id, jsonrpc } = call;
    if (id === null) {
      const error = this.#report(new TRPCError({ code: 'PARSE_ERROR', message: '`id` is required' }), undefined, 'unknown');
      return this.#respond({ id, jsonrpc, error: this.#errorShape(error, 'unknown', undefined, undefined) });
    }
    if (call.method === 'subscription.stop') return void this.#subscription(id)?.abort();
    const type = call.method;
    const { path, lastEventId } = call.params;
    let { input } = call.params;
    if (lastEventId !== undefined) input = typeof input === 'object' && input !== null ? { ...input, lastEventId } : (input ?? { lastEventId });
    const fail = (cause: unknown) => {
      const error = this.#report(cause, path, type);
      this.#respond({ id, jsonrpc, error: this.#errorShape(error, type, path, input) });
    };
    if (type === 'subscription' && this.#subscription(id)) return fail(new TRPCError({ code: 'BAD_REQUEST', message: `Duplicate id ${id}` }));

    const stop = new StopSignal();
    if (type === 'subscription') {
      if (this.#first) (this.#more ??= new Map()).set(id, stop);
      else [this.#firstId, this.#first] = [id, stop];
    }
    // Once its stream runs, a subscription is the stream's to end: this call's frame is let go of.
    let streaming = false;
    try {
      const state = await context;
      if (!state.ok) throw state.error;
      if (stop.aborted || (type === 'subscription' && this.#socket.readyState !== OPEN)) return this.#stopped(id, jsonrpc, type);
      const result: unknown = await callProcedure({ router: this.#opts.router, path, getRawInput: async () => input, ctx: this.#ctx, type, signal: stop.signal, batchIndex });
      if (type !== 'subscription') {
        if (isAsyncIterable(result)) throw new TRPCError({ code: 'UNSUPPORTED_MEDIA_TYPE', message: `Cannot return an async iterable from a ${type} procedure with WebSockets` });
        return this.#respond({ id, jsonrpc, result: { type: 'data', data: result } });
      }
      if (!isAsyncIterable(result)) throw new TRPCError({ code: 'INTERNAL_SERVER_ERROR', message: `Subscription ${path} did not return an AsyncGenerator` });
      const iterator = result[Symbol.asyncIterator]();
      if (stop.aborted || this.#socket.readyState !== OPEN) {
        stop.abort();
        await iterator.return?.();
        return this.#stopped(id, jsonrpc, type);
      }
      this.#respond({ id, jsonrpc, result: { type: 'started' } });
      streaming = true;
      this.#stream(iterator, stop, id, jsonrpc, path, input);
    } catch (cause) {
      // A procedure that gave up because its subscription was stopped is no error.
      const error = getTRPCErrorFromUnknown(cause);
      if (stop.aborted && error.code === 'INTERNAL_SERVER_ERROR' && isAbortError(error.cause)) return;
      fail(error);
    } finally {
      if (type === 'subscription' && !streaming) this.#unsubscribed(id, stop);
    }
  }

  #subscription(id: number | string) {
    return this.#first && this.#firstId === id ? this.#first : this.#more?.get(id);
  }

  #stopped(id: number | string, jsonrpc: '2.0' | undefined, type: TRPCProcedureType) {
    if (type === 'subscription') this.#respond({ id, jsonrpc, result: { type: 'stopped' } });
  }

  /**
   * Its stop aborts whichever way it ended, a stream that ended by itself on an open socket
   * included: the caller rules give its places back (the socket's and its user's) on that abort.
   */
  #unsubscribed(id: number | string, stop: StopSignal) {
    if (this.#first === stop) this.#first = this.#firstId = undefined;
    else if (this.#more?.get(id) === stop) this.#more.delete(id);
    stop.abort();
  }

  /**
   * Writes the stream's events until it ends, fails or is stopped, then `stopped`. The streams
   * served here end once their signal aborts (they listen to it), so an idle subscription is two
   * reactions waiting on its stream's next event: an async function's suspended frame, with its
   * registers and its awaits' own closures, weighed several times more.
   */
  #stream(iterator: AsyncIterator<unknown>, stop: StopSignal, id: number | string, jsonrpc: '2.0' | undefined, path: string, input: unknown) {
    const onItem = (next: IteratorResult<unknown>) => {
      if (next.done || stop.aborted) return void this.#streamEnded(iterator, stop, id, jsonrpc, path, input, next.done === true, false, undefined);
      try {
        const value = next.value;
        if (isTrackedEnvelope(value)) {
          const [eventId, data] = value;
          this.#respond({ id, jsonrpc, result: { type: 'data', id: eventId, data: { id: eventId, data } } });
        } else this.#respond({ id, jsonrpc, result: { type: 'data', data: value } });
      } catch (cause) {
        return void this.#streamEnded(iterator, stop, id, jsonrpc, path, input, false, true, cause);
      }
      try {
        Promise.resolve(iterator.next()).then(onItem, onFailure);
      } catch (cause) {
        onFailure(cause);
      }
    };
    const onFailure = (cause: unknown) => {
      // A stream that throws after its stop ended as a stopped one does.
      if (!stop.aborted) return void this.#streamEnded(iterator, stop, id, jsonrpc, path, input, false, true, cause);
      if (!isAbortError(getTRPCErrorFromUnknown(cause).cause)) this.#report(cause, path, 'subscription');
      void this.#streamEnded(iterator, stop, id, jsonrpc, path, input, true, false, undefined);
    };
    // Started here rather than by a closure: the handlers' shared context would keep it for the stream's life.
    try {
      Promise.resolve(iterator.next()).then(onItem, onFailure);
    } catch (cause) {
      onFailure(cause);
    }
  }

  /** A stream's end: its failure told (unless it was stopped), the stream returned unless it ended by itself, then `stopped`. */
  async #streamEnded(iterator: AsyncIterator<unknown>, stop: StopSignal, id: number | string, jsonrpc: '2.0' | undefined, path: string, input: unknown, done: boolean, failed: boolean, failure: unknown) {
    try {
      try {
        // Failed while streaming: the client hears the error, then `stopped`.
        if (failed && !stop.aborted) {
          const error = this.#report(failure, path, 'subscription');
          this.#respond({ id, jsonrpc, error: this.#errorShape(error, 'subscription', path, input) });
        }
      } finally {
        if (!done) await iterator.return?.();
      }
      this.#stopped(id, jsonrpc, 'subscription');
    } catch (cause) {
      // Its end failed (the stream's return threw): as a failed call, unless the stream gave up on its stop.
      const error = getTRPCErrorFromUnknown(cause);
      if (!(stop.aborted && error.code === 'INTERNAL_SERVER_ERROR' && isAbortError(error.cause))) {
        try {
          this.#respond({ id, jsonrpc, error: this.#errorShape(this.#report(error, path, 'subscription'), 'subscription', path, input) });
        } catch (failure) {
          this.#report(failure, path, 'subscription');
        }
      }
    } finally {
      this.#unsubscribed(id, stop);
    }
  }
}
