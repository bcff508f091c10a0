import WebSocket from 'ws';

/** A tRPC error as it arrives on the wire (HTTP body or WebSocket message). */
export interface WireTrpcError {
  code: number;
  message: string;
  data: { code: string; httpStatus: number; parleyCode: string; details: { fields?: Record<string, string[]>; claim?: string } };
}

/** One tRPC call over plain HTTP (no SDK), so any input, valid or not, reaches the server as given. */
export async function trpcHttp(baseUrl: string, path: string, input: unknown, token?: string, kind: 'query' | 'mutation' = 'mutation') {
  const headers: Record<string, string> = token !== undefined ? { authorization: `Bearer ${token}` } : {};
  const res =
    kind === 'mutation'
      ? await fetch(`${baseUrl}/trpc/${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: typeof input === 'string' ? input : JSON.stringify(input) })
      : // No input is no `input` parameter (JSON has no `undefined`).
        await fetch(`${baseUrl}/trpc/${path}${input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`}`, { headers });
  const body = (await res.json()) as { result?: { data: unknown }; error?: WireTrpcError };
  return { status: res.status, ...body };
}

/** A raw tRPC WebSocket (token in `?token=`) that sends any message and awaits the answer to an id. */
export async function openTrpcSocket(baseUrl: string, token: string) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/trpc?token=${encodeURIComponent(token)}`);
  const answers = new Map<number | string, (msg: { result?: unknown; error?: WireTrpcError }) => void>();
  /** Every message received, in order (`started` and `stopped` included). */
  const received: Array<{ id?: number | string; result?: { type?: string }; error?: WireTrpcError }> = [];
  const waiters: Array<() => void> = [];
  ws.on('message', (data) => {
    const msg = JSON.parse(data.toString()) as { id?: number | string; result?: { type?: string }; error?: WireTrpcError };
    received.push(msg);
    waiters.splice(0).forEach((wake) => wake());
    // A subscription first answers `started`; its error or data comes after.
    if (msg.id !== undefined && msg.id !== null && msg.result?.type !== 'started') answers.get(msg.id)?.(msg);
  });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 0;
  return {
    ws,
    closed,
    received,
    /** Resolves once `done()` holds, checked after each message. */
    async until(done: () => boolean) {
      while (!done()) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    /** Sends `{id, method, params: {path, input}}`; resolves with the answer to that id. */
    call(method: 'query' | 'mutation' | 'subscription', path: string, input: unknown) {
      // A string id no fuzzed message carries, so answers to those never resolve a call.
      const id = `call-${++nextId}`;
      return new Promise<{ result?: unknown; error?: WireTrpcError }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no answer to tRPC ${method} ${path} #${id}`)), 10_000);
        answers.set(id, (msg) => {
          clearTimeout(timer);
          answers.delete(id);
          resolve(msg);
        });
        ws.send(JSON.stringify({ id, method, params: { path, input } }));
      });
    },
    /** Sends any text as it is. */
    sendRaw: (text: string) => ws.send(text),
    close: () => ws.close(),
  };
}
