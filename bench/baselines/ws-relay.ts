/**
 * The raw-ws baseline: the least a chat relay can do — forward each frame from a socket to its
 * peer (`/<pair>/<a|b>`), no auth, no database. Runs in its own process like the server.
 */
import { WebSocketServer, type WebSocket } from 'ws';

const peers = new Map<string, WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 4096 });

wss.on('connection', (socket, req) => {
  const [, pair = '', side = ''] = (req.url ?? '').split('/');
  const me = `${pair}/${side}`;
  const peerKey = `${pair}/${side === 'a' ? 'b' : 'a'}`;
  peers.set(me, socket);
  socket.on('message', (data, isBinary) => peers.get(peerKey)?.send(data, { binary: isBinary }));
  socket.on('close', () => peers.get(me) === socket && peers.delete(me));
});

wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.send?.({ type: 'ready', url: `ws://127.0.0.1:${port}`, pid: process.pid });
});

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'gc') {
    (globalThis as { gc?: () => void }).gc?.();
    process.send?.({ type: 'gc-done', listeners: peers.size });
  } else if (msg.type === 'stop') process.exit(0);
});
process.on('disconnect', () => process.exit(0));
