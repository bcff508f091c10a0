/**
 * What attachments cost, on the local store (the main server, DATA_DIR on local disk):
 *
 * 1. Sends with one attachment against text-only sends, tRPC WebSocket c=16 over 16 rooms,
 *    interleaved rounds. The attachments (1 KiB text files) are created and uploaded before the
 *    timed part; only the sends are timed. Load from this process (it keeps the upload queue).
 * 2. Parley's CPU per MiB uploaded: 1 MiB PUTs to signed URLs, 4 at a time, the server process's
 *    user+system CPU from /proc over the bytes.
 * 3. Serving one 1 MiB file: many concurrent GETs of its signed URL over kept-alive connections,
 *    aggregate MiB/s, and this generator's CPU share (it shares the two cores with the server);
 *    against plain `node:http` streaming a file of the same size, in alternating rounds.
 * 4. RSS while many clients download a 25 MiB file at once (streamed from disk, so it should stay
 *    flat): the server's RSS before, and its peak sampled every 10 ms.
 *
 * 5. Parley's CPU per MiB uploaded on S3: a second instance on a loopback S3-compatible server
 *    (s3rver, in this process), the same uploads on presigned POSTs straight to the store. Parley's
 *    share is signing each (createUpload), nothing per byte. S3 downloads are the store's alone.
 */
import { connect } from 'node:net';
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { signToken } from '../../server/identity/sign-token.ts';
import { seedPairs, type Pair } from '../db.ts';
import { BENCH_DIR, cpuMs, nextMessage, postgresCpuMs, rssBytes, rssSampler, spawnNode } from '../proc.ts';
import { join } from 'node:path';
import S3rver from 's3rver';
import { upload } from '../../tests/support/attachments.ts';
import { tempDir } from '../../tests/support/temp-dir.ts';
import { startInstance } from '../instance-process.ts';
import type { BenchContext, Row } from '../report.ts';
import { interleave, listRates, roundRatio } from '../rounds.ts';

const CONC = 16;
const MiB = 1024 * 1024;

/** createUpload, then the bytes as its target says: a PUT (the local store), or S3's presigned POST form. */
async function uploaded(base: string, c: ChatClient, roomId: string, body: Buffer, name: string) {
  const created = await c.attachments.createUpload.mutate({ roomId, name, contentType: 'text/plain', size: body.length });
  const res = await upload({ url: base }, created.upload, body, 'text/plain');
  await res.arrayBuffer();
  if (res.status >= 300) throw new Error(`upload: HTTP ${res.status}`);
  return created.attachmentId;
}

/**
 * GETs `url` from `clients` loops for `ms` (or once each), each loop on one kept-alive socket of
 * its own; bytes of body read. The generator shares the two cores with the server it measures, so
 * it does as little per byte as a client can: each socket reads into one reused buffer (`onread`),
 * and only a response's head is parsed (its status and Content-Length), its body only counted.
 * Through `node:http` the generator took more than a core for 330 MiB/s.
 */
async function download(url: string, clients: number, ms: number, once = false): Promise<number> {
  const target = new URL(url);
  const request = Buffer.from(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\n\r\n`);
  const until = performance.now() + ms;
  let bytes = 0;
  const loop = () =>
    new Promise<void>((resolve, reject) => {
      let head = '';
      /** Body bytes the current response still owes; -1 while its head is being read. */
      let owed = -1;
      const onBytes = (chunk: Buffer) => {
        let body = chunk;
        if (owed < 0) {
          head += chunk.toString('latin1');
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const status = head.slice(9, 12);
          const length = /\r\ncontent-length: *(\d+)/i.exec(head.slice(0, end));
          if (status !== '200' || !length) return fail(new Error(`download: HTTP ${status}${length ? '' : ' without Content-Length'}`));
          owed = Number(length[1]);
          body = chunk.subarray(chunk.length - (head.length - end - 4));
          head = '';
        }
        if (body.length > owed) return fail(new Error('download: more bytes than the Content-Length'));
        owed -= body.length;
        bytes += body.length;
        if (owed > 0) return;
        owed = -1;
        if (!once && performance.now() < until) socket.write(request);
        else {
          socket.end();
          resolve();
        }
      };
      const fail = (err: Error) => {
        socket.destroy();
        reject(err);
      };
      const buffer = Buffer.allocUnsafe(256 * 1024);
      const socket = connect({ host: target.hostname, port: Number(target.port), onread: { buffer, callback: (n) => (onBytes(buffer.subarray(0, n)), true) } });
      socket.on('error', fail);
      socket.on('end', () => owed !== -1 && fail(new Error('download: connection closed mid-response')));
      socket.write(request);
    });
  await Promise.all(Array.from({ length: clients }, loop));
  return bytes;
}

/** 5. What `count` 1 MiB uploads through S3 presigned POSTs cost Parley (an instance of its own on s3rver). */
async function s3UploadCpu(ctx: BenchContext, pairs: Pair[], body: Buffer, count: number): Promise<Row> {
  await using dir = await tempDir('parley-bench-s3-');
  const store = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir.path, configureBuckets: [{ name: 'parley', configs: [] }] });
  const { port } = await store.run();
  const instance = await startInstance(ctx, { S3_ENDPOINT: `http://127.0.0.1:${port}`, S3_BUCKET: 'parley', S3_ACCESS_KEY_ID: 'S3RVER', S3_SECRET_ACCESS_KEY: 'S3RVER', UPLOAD_RATE_PER_SEC: '0' });
  const clients = await Promise.all(pairs.map(async (p) => createChatClient({ url: instance.url, token: await signToken({ secret: ctx.secret, userId: p.a, expiresIn: '1h' }) })));
  try {
    // Warm: the instance's first createUpload loads the AWS SDK.
    await uploaded(instance.url, clients[0]!, pairs[0]!.roomId, body.subarray(0, 1024), 'warm.txt');
    // The same uploads of 1 KiB: what is left of a 1 MiB upload's cost over that is per byte.
    const run = async (bytes: Buffer, tag: string) => {
      const cpu0 = cpuMs(instance.pid);
      const u0 = performance.now();
      for (let k = 0; k < count; k += clients.length) await Promise.all(clients.map((c, j) => uploaded(instance.url, c, pairs[j]!.roomId, bytes, `${tag}-${k + j}.txt`)));
      return { cpuMsPerUpload: (cpuMs(instance.pid) - cpu0) / count, wallMs: performance.now() - u0 };
    };
    const kib = await run(body.subarray(0, 1024), 's3-kib');
    const mib = await run(body, 's3-mib');
    const perMiB = mib.cpuMsPerUpload - kib.cpuMsPerUpload;
    return {
      scenario: 'files: upload CPU',
      surface: 'S3 presigned POST (s3rver on loopback)',
      params: `${count} × 1 MiB and ${count} × 1 KiB, ${clients.length} at a time, straight to the store; a second instance with S3_BUCKET (createUpload counted in CPU)`,
      result: `server CPU per upload: ${mib.cpuMsPerUpload.toFixed(2)} ms of 1 MiB, ${kib.cpuMsPerUpload.toFixed(2)} ms of 1 KiB (both are signing the POST and storing the attachment's row; the difference, ${perMiB.toFixed(2)} ms, is what a MiB of bytes costs Parley); ${((count / mib.wallMs) * 1000).toFixed(0)} MiB/s`,
      baseline: '—',
      ratio: NaN,
      data: { count, cpuMsPerUpload: mib.cpuMsPerUpload, cpuMsPerSmallUpload: kib.cpuMsPerUpload, cpuMsPerMiB: perMiB, wallMs: mib.wallMs },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await instance.stop();
    await store.close();
  }
}

export async function runFiles(ctx: BenchContext): Promise<Row[]> {
  const pairs = await seedPairs(ctx.pool, 'file', CONC);
  const clients = await Promise.all(pairs.map(async (p) => createChatClient({ url: ctx.baseUrl, token: await signToken({ secret: ctx.secret, userId: p.a, expiresIn: '1h' }) })));
  const rows: Row[] = [];
  try {
    // 1. Sends with an attachment against text-only sends.
    const durationMs = ctx.quick ? 400 : 2_000;
    const rounds = ctx.quick ? 1 : 5;
    const small = Buffer.alloc(1024, 'a');
    // Each file round is topped up, untimed, to three times what the fastest round so far would
    // use (this machine's speed swings twofold between rounds): a fixed count sized for 400 msg/s
    // ran out once sends got faster, and the loops that ran dry stopped, so the round undercounted
    // (the last one measured 0). What a round leaves is used by the next.
    const ready: string[][] = pairs.map(() => []);
    let uploads = 0;
    let uploadMs = 0;
    let fastest = 0;
    let named = 0;
    const topUp = async () => {
      const perLoop = Math.ceil((fastest * 3 * durationMs) / 1000 / CONC) + 3;
      const t0 = performance.now();
      await Promise.all(pairs.map(async (p, i) => {
        while (ready[i]!.length < perLoop) {
          ready[i]!.push(await uploaded(ctx.baseUrl, clients[i]!, p.roomId, small, `f${named++}.txt`));
          uploads++;
        }
      }));
      uploadMs += performance.now() - t0;
    };
    let exhausted = 0;
    // CPU per send of each kind (the server's, PostgreSQL's, this generator's): steadier than the
    // rates on a shared, busy machine, and it says where a difference is.
    const noCpu = () => ({ ms: 0, pg: 0, gen: 0, ops: 0 });
    const cpu = { text: noCpu(), file: noCpu() };
    const sendLoop = async (withFile: boolean) => {
      if (withFile) await topUp();
      // Every round starts from a collected heap: the untimed uploads' garbage is theirs, not the sends'.
      await ctx.gc('server');
      let ops = 0;
      const cpu0 = cpuMs(ctx.serverPid);
      const pg0 = postgresCpuMs();
      const gen0 = process.cpuUsage();
      const start = performance.now();
      await Promise.all(pairs.map(async (p: Pair, i) => {
        for (let n = 0; performance.now() - start < durationMs; n++) {
          const id = withFile ? ready[i]!.pop() : undefined;
          if (withFile && !id) return void exhausted++;
          await clients[i]!.messages.send.mutate({ roomId: p.roomId, content: withFile ? '' : `text ${n}`, ...(id ? { attachmentIds: [id] } : {}) });
          ops++;
        }
      }));
      const rate = (ops / (performance.now() - start)) * 1000;
      const kind = cpu[withFile ? 'file' : 'text'];
      kind.ms += cpuMs(ctx.serverPid) - cpu0;
      kind.pg += postgresCpuMs() - pg0;
      const gen = process.cpuUsage(gen0);
      kind.gen += (gen.user + gen.system) / 1000;
      kind.ops += ops;
      fastest = Math.max(fastest, rate);
      return rate;
    };
    // Untimed, one round of each kind: the first file round ran the attachment path's code cold.
    await sendLoop(false);
    await sendLoop(true);
    cpu.text = noCpu();
    cpu.file = noCpu();
    const runs = await interleave(rounds, { text: () => sendLoop(false), file: () => sendLoop(true) });
    if (exhausted) ctx.problems.push(`files: ${exhausted} loops ran out of pre-uploaded attachments (rates undercount)`);
    const sendRatio = roundRatio(runs.file, runs.text);
    const usPerSend = (of: 'ms' | 'pg' | 'gen') => ({ file: (cpu.file[of] * 1000) / cpu.file.ops, text: (cpu.text[of] * 1000) / cpu.text.ops });
    const perSend = (of: 'ms' | 'pg' | 'gen') => `${usPerSend(of).file.toFixed(0)} / ${usPerSend(of).text.toFixed(0)}`;
    if (!ctx.quick && sendRatio < 0.9) ctx.problems.push(`files: sends with an attachment ran at ${sendRatio.toFixed(2)}× of text-only (target ≥ 0.90×)`);
    rows.push({
      scenario: 'files: send with attachments',
      surface: 'SDK messages.send (tRPC over HTTP)',
      params: `c=${CONC}, ${CONC} rooms, ${rounds} interleaved rounds of ${durationMs} ms; one 1 KiB text/plain attachment per send, uploaded before each round, untimed (${uploads} uploads in ${(uploadMs / 1000).toFixed(1)} s); CPU per send with an attachment / text-only: server ${perSend('ms')} µs, PostgreSQL ${perSend('pg')} µs, load generator ${perSend('gen')} µs`,
      result: listRates(runs.file),
      baseline: `text-only ${listRates(runs.text)}`,
      ratio: sendRatio,
      data: { file: runs.file, text: runs.text, durationMs, uploads, uploadMs, serverCpuUsPerSend: usPerSend('ms'), postgresCpuUsPerSend: usPerSend('pg'), generatorCpuUsPerSend: usPerSend('gen') },
    });

    // 2. Server CPU per MiB uploaded.
    const mib = Buffer.alloc(MiB, 'b');
    const count = ctx.quick ? 16 : 64;
    const cpu0 = cpuMs(ctx.serverPid);
    const u0 = performance.now();
    let oneMiB = '';
    for (let k = 0; k < count; k += 4) {
      const ids = await Promise.all([0, 1, 2, 3].map((j) => uploaded(ctx.baseUrl, clients[j]!, pairs[j]!.roomId, mib, `big${k + j}.txt`)));
      oneMiB ||= ids[0]!;
    }
    const uploadWall = performance.now() - u0;
    const cpuPerMiB = (cpuMs(ctx.serverPid) - cpu0) / count;
    rows.push({
      scenario: 'files: upload CPU',
      surface: 'PUT /files/uploads (local store)',
      params: `${count} × 1 MiB, 4 at a time, signed upload URLs (createUpload not counted in the wall time, counted in CPU)`,
      result: `${cpuPerMiB.toFixed(1)} ms server CPU per MiB; ${((count / uploadWall) * 1000).toFixed(0)} MiB/s`,
      baseline: '—',
      ratio: NaN,
      data: { count, cpuMsPerMiB: cpuPerMiB, wallMs: uploadWall },
    });
    rows.push(await s3UploadCpu(ctx, pairs.slice(0, 4), mib, count));

    // 3. Serving a 1 MiB file.
    const sent = await clients[0]!.messages.send.mutate({ roomId: pairs[0]!.roomId, content: '', attachmentIds: [oneMiB] });
    const url = new URL(sent.attachments![0]!.url, ctx.baseUrl).toString();
    const conc = 32;
    const serveMs = ctx.quick ? 1_500 : 5_000;
    const raw = spawnNode(join(BENCH_DIR, 'raw-file-server.ts'), { env: { RAW_FILE_BYTES: String(MiB) } });
    const rawServer = await nextMessage<{ url: string; pid: number }>(raw, (m) => m?.type === 'ready', 30_000, 'raw file server');
    const serve = async (target: string, pid: number) => {
      const g0 = process.cpuUsage();
      const s0 = cpuMs(pid);
      const w0 = performance.now();
      const bytes = await download(target, conc, serveMs);
      const wall = performance.now() - w0;
      const g = process.cpuUsage(g0);
      return { mibPerSec: bytes / MiB / (wall / 1000), genShare: (g.user + g.system) / 1000 / wall, serverShare: (cpuMs(pid) - s0) / wall };
    };
    const parley: Array<Awaited<ReturnType<typeof serve>>> = [];
    const plain: Array<Awaited<ReturnType<typeof serve>>> = [];
    try {
      for (let round = 0; round < (ctx.quick ? 1 : 3); round++) {
        plain.push(await serve(rawServer.url, rawServer.pid));
        parley.push(await serve(url, ctx.serverPid));
      }
    } finally {
      raw.send({ type: 'stop' });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const mibPerSec = median(parley.map((r) => r.mibPerSec));
    const rawMibPerSec = median(plain.map((r) => r.mibPerSec));
    const last = parley.at(-1)!;
    rows.push({
      scenario: 'files: download 1 MiB',
      surface: 'GET /files/files (local store)',
      params: `${conc} concurrent clients, kept-alive, ${serveMs / 1000} s, loopback; generator in the bench process, reading raw sockets into one reused buffer each; ${parley.length} rounds alternating with the baseline`,
      result: `${mibPerSec.toFixed(0)} MiB/s (rounds: ${parley.map((r) => r.mibPerSec.toFixed(0)).join(', ')}); CPU: server ${(last.serverShare * 100).toFixed(0)} %, generator ${(last.genShare * 100).toFixed(0)} % of one core`,
      baseline: `plain node:http + createReadStream ${rawMibPerSec.toFixed(0)} MiB/s (rounds: ${plain.map((r) => r.mibPerSec.toFixed(0)).join(', ')})`,
      ratio: mibPerSec / rawMibPerSec,
      data: { mibPerSec, rawMibPerSec, conc, serveMs, generatorCpuShare: last.genShare, serverCpuShare: last.serverShare },
    });

    // 4. RSS while many clients download 25 MiB each.
    const big = Buffer.alloc(25 * MiB, 'c');
    const bigId = await uploaded(ctx.baseUrl, clients[0]!, pairs[0]!.roomId, big, 'big.txt');
    const bigSent = await clients[0]!.messages.send.mutate({ roomId: pairs[0]!.roomId, content: '', attachmentIds: [bigId] });
    const bigUrl = new URL(bigSent.attachments![0]!.url, ctx.baseUrl).toString();
    const readers = ctx.quick ? 25 : 100;
    await ctx.gc('server');
    const before = rssBytes(ctx.serverPid);
    const sampler = rssSampler(ctx.serverPid);
    const b0 = performance.now();
    const got = await download(bigUrl, readers, 0, true);
    const bigWall = performance.now() - b0;
    const peak = sampler.stop();
    if (got !== readers * 25 * MiB) ctx.failures.push(`files: ${readers} downloads of 25 MiB read ${got} bytes`);
    rows.push({
      scenario: `files: ${readers} clients × 25 MiB`,
      surface: 'GET /files/files (local store)',
      params: `${readers} concurrent downloads of one 25 MiB file`,
      result: `server RSS ${(before / MiB).toFixed(0)} MiB before, peak ${(peak / MiB).toFixed(0)} MiB; ${((got / MiB) / (bigWall / 1000)).toFixed(0)} MiB/s`,
      baseline: '—',
      ratio: NaN,
      data: { readers, beforeMiB: before / MiB, peakMiB: peak / MiB, wallMs: bigWall },
    });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return rows;
}
