import { createServer, connect, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of a server that a test can take down and bring back on the same port: "offline" for real. */
export interface TcpProxy {
  url: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/** `replyDelayMs`: what the server sends reaches the client that much later (a slow link or a busy server, every reply late). */
export async function startTcpProxy(targetUrl: string, { replyDelayMs = 0 }: { replyDelayMs?: number } = {}): Promise<TcpProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const up = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      if (!replyDelayMs) upstream.pipe(client);
      // The same delay for every chunk: they arrive in the order they were sent.
      else upstream.on('data', (chunk: Buffer) => setTimeout(() => client.destroyed || client.write(chunk), replyDelayMs));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  };
  const down = async () => {
    const closed = new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
    for (const s of sockets) s.destroy();
    await closed;
    server = undefined;
  };
  await up();
  return { url: `http://127.0.0.1:${port}`, up, down, close: down };
}
