/**
 * The files section's baseline: plain `node:http` serving one file with `fs.createReadStream`, no
 * signature, no framework — what this machine's loopback and Node manage without Parley.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const size = Number(process.env.RAW_FILE_BYTES ?? 1024 * 1024);
const dir = await mkdtemp(join(tmpdir(), 'parley-raw-file-'));
const path = join(dir, 'file');
await writeFile(path, Buffer.alloc(size, 'r'));
const server = http.createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
  createReadStream(path).pipe(res);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.send!({ type: 'ready', url: `http://127.0.0.1:${address.port}/file`, pid: process.pid });
});
process.on('message', (msg: { type?: string }) => {
  if (msg?.type === 'stop') server.close(() => void rm(dir, { recursive: true, force: true }).finally(() => process.exit(0)));
});
