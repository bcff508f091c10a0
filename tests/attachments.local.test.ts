import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import http from 'node:http';
import { Writable } from 'node:stream';
import { access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { afterAll, describe, expect, vi } from 'vitest';
import type { Message } from '../contracts/index.ts';
import type { LocalStorage } from '../server/infra/storage/local-storage.ts';
import { absolute, createUpload, elf, png, send, upload, uploaded } from './support/attachments.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { trpcHttp } from './support/raw-trpc.ts';
import { attachmentSuite } from './support/attachment-suite.ts';
import { appTest, type TestApp } from './support/test-app.ts';

// The local store: uploads straight to Parley's /files/ on signed URLs, checks at send, signed
// downloads, deletion and the sweep.
const dataDir = mkdtempSync(join(tmpdir(), 'parley-attach-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

interface Pair {
  alice: string;
  bob: string;
  carol: string;
  roomId: string;
  /** alice's room with carol. */
  otherRoomId: string;
}

const ADMIN_TOKEN = 'attachments-admin-secret-0123456789abcdef';
const it = appTest(import.meta.filename, { DATA_DIR: dataDir, ATTACHMENT_MAX_BYTES: String(1024 * 1024), ADMIN_TOKEN }).extend<{ $file: { pair: Pair } }>({
  pair: [
    async ({ t }, use) => {
      const [alice, bob, carol] = await Promise.all([t.token('alice'), t.token('bob'), t.token('carol')]);
      const open = async (token: string, other: string) => ((await trpcHttp(t.url, 'rooms.open', { otherUserId: other }, token)).result!.data as { id: string }).id;
      await use({ alice, bob, carol, roomId: await open(alice, 'bob'), otherRoomId: await open(alice, 'carol') });
    },
    { scope: 'file' },
  ],
});

const objectPath = (id: string, prefix = 'files') => join(dataDir, 'attachments', prefix, id);
const exists = (path: string) => access(path).then(() => true, () => false);
const list = async (t: TestApp, token: string, roomId: string) =>
  ((await trpcHttp(t.url, 'messages.list', { roomId, direction: 'backward', limit: 5 }, token, 'query')).result!.data as { items: Message[] }).items;

/** A connection holding the room's row: a send to the room waits in its statement until `release`. */
async function holdRoom(t: TestApp, roomId: string) {
  const holder = new pg.Client({ connectionString: t.databaseUrl });
  await holder.connect();
  await holder.query('begin');
  await holder.query('select 1 from chat_rooms where id = $1 for update', [roomId]);
  return { release: () => holder.query('commit'), [Symbol.asyncDispose]: () => holder.end() };
}

describe('upload, send, read', () => {
  it('a PNG uploaded within its policy is attached by a send with no text, and both participants can download it', async ({ t, pair }) => {
    const image = await png();
    const created = await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'red square.png', contentType: 'image/png', size: image.length });
    const { attachmentId, upload: target, expiresAt } = created.result!.data;
    expect(target).toMatchObject({ method: 'PUT', headers: { 'content-type': 'image/png' } });
    expect(target.url).toMatch(/^\/files\/uploads\//);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(600_000);
    expect((await upload(t, target, image, 'image/png')).status).toBe(200);

    const sent = await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [attachmentId] });
    expect(sent.error).toBeUndefined();
    const message = sent.result!.data;
    expect(message.content).toBe('');
    expect(message.attachments).toEqual([{ id: attachmentId, name: 'red square.png', contentType: 'image/png', size: image.length, url: expect.stringMatching(/^\/files\/files\//) }]);

    const [seen] = (await list(t, pair.bob, pair.roomId)).filter((m) => m.id === message.id);
    const res = await fetch(absolute(t, seen!.attachments![0]!.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('content-disposition')).toBe(`inline; filename="red square.png"; filename*=UTF-8''red%20square.png`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
    expect((await t.sql('select status from attachments where id = $1', [attachmentId]))[0]).toEqual({ status: 'ready' });
  });

  it('anything but an inline image downloads as an attachment', async ({ t, pair }) => {
    const text = Buffer.from('meeting notes\n');
    const id = await uploaded(t, pair.alice, pair.roomId, text, 'text/plain', 'notes.txt');
    const message = (await send(t, pair.alice, { roomId: pair.roomId, content: 'see notes', attachmentIds: [id] })).result!.data;
    const res = await fetch(absolute(t, message.attachments![0]!.url));
    expect(res.headers.get('content-type')).toBe('text/plain');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="notes.txt"/);
    expect(await res.text()).toBe('meeting notes\n');
  });

  it('HEAD of a download URL answers its GET\u2019s headers and length with no body; a range past the end is 416', async ({ t, pair }) => {
    const text = Buffer.from('0123456789abcdef');
    const id = await uploaded(t, pair.alice, pair.roomId, text, 'text/plain', 'digits.txt');
    const message = (await send(t, pair.alice, { roomId: pair.roomId, content: 'digits', attachmentIds: [id] })).result!.data;
    const url = absolute(t, message.attachments![0]!.url);
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), head.headers.get('content-type'), await head.text()]).toEqual([200, '16', 'text/plain', '']);
    const past = await fetch(url, { headers: { range: 'bytes=16-' } });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, 'bytes */16']);
    expect(await (await fetch(url)).text()).toBe('0123456789abcdef');
  });

  it('a file of many chunks downloads byte for byte, whole and by range; a download abandoned midway lets go of the file', async ({ t, pair }) => {
    const text = Buffer.from(randomBytes(900 * 1024 + 77).map((b) => 32 + (b % 95)));
    const id = await uploaded(t, pair.alice, pair.roomId, text, 'text/plain', 'long.txt');
    const message = (await send(t, pair.alice, { roomId: pair.roomId, content: 'long', attachmentIds: [id] })).result!.data;
    const url = absolute(t, message.attachments![0]!.url);
    const [whole, part] = await Promise.all([fetch(url), fetch(url, { headers: { range: 'bytes=65530-300000' } })]);
    expect(Buffer.from(await whole.arrayBuffer()).equals(text)).toBe(true);
    // A reader slower than the disk: a write's callback comes late, and what it was given must
    // still be what was read (the store reuses its buffers only once their writes are done).
    const opened = await (t.app.services.attachments.storage as LocalStorage).openRead(`files/${id}`);
    const seen: Buffer[] = [];
    // However slow the reader, the pipe holds at most two 64 KiB chunks for it.
    let mostQueued = 0;
    const slow = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _encoding, done) {
        mostQueued = Math.max(mostQueued, this.writableLength);
        setTimeout(() => {
          seen.push(Buffer.from(chunk));
          done();
        }, 1);
      },
    });
    await opened!.pipeTo(slow);
    expect(Buffer.concat(seen).equals(text)).toBe(true);
    expect(mostQueued).toBeLessThanOrEqual(2 * 64 * 1024);
    expect([part.status, part.headers.get('content-length')]).toEqual([206, String(300000 - 65530 + 1)]);
    expect(Buffer.from(await part.arrayBuffer()).equals(text.subarray(65530, 300001))).toBe(true);
    // The file's open descriptors in this process (the server runs here).
    const held = () => readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === objectPath(id);
      } catch {
        return false;
      }
    }).length;
    await new Promise<void>((resolve, reject) => {
      const req = http.get(url, (res) => res.once('data', () => {
        expect(held()).toBe(1);
        req.destroy();
        resolve();
      }));
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    await vi.waitFor(() => expect(held()).toBe(0), { timeout: 5_000 });
  });

  it('a declared image/png that is an executable is refused at send, and nothing is stored', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.roomId, elf(), 'image/png', 'cat.png');
    const before = await t.sql('select count(*)::int as n from messages');
    const refused = await send(t, pair.alice, { roomId: pair.roomId, content: 'a cat', attachmentIds: [id] });
    expect(refused.error!.data.parleyCode).toBe('INVALID_INPUT');
    expect(refused.error!.data.details.fields!.attachmentIds![0]).toMatch(/is not image\/png \(its content is application\/x-elf\)/);
    expect(await t.sql('select count(*)::int as n from messages')).toEqual(before);
    expect((await t.sql('select status from attachments where id = $1', [id]))[0]).toEqual({ status: 'pending' });
  });

  it('an upload is checked as it arrives: bytes that pass go where no upload URL reaches, and a re-upload changes nothing', async ({ t, pair }) => {
    const image = await png(16, 16);
    const created = (await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'dot.png', contentType: 'image/png', size: image.length })).result!.data;
    const id = created.attachmentId;
    expect((await upload(t, created.upload, image, 'image/png')).status).toBe(200);
    expect([await exists(objectPath(id)), await exists(objectPath(id, 'uploads'))]).toEqual([true, false]);
    expect(await t.sql('select upload_checked from attachments where id = $1', [id])).toEqual([{ upload_checked: true }]);
    // An executable of the same size to the same URL, still valid: discarded, the checked file stays.
    const program = Buffer.concat([elf(), Buffer.alloc(image.length)]).subarray(0, image.length);
    expect((await upload(t, created.upload, program, 'image/png')).status).toBe(200);
    expect(await exists(objectPath(id, 'uploads'))).toBe(false);
    const sent = await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] });
    expect(Buffer.from(await (await fetch(absolute(t, sent.result!.data.attachments![0]!.url))).arrayBuffer()).equals(image)).toBe(true);
  });

  it('an upload that fails the checks on arrival waits at its upload key for the send to refuse, and a good one replaces it', async ({ t, pair }) => {
    const image = await png(16, 16);
    const created = (await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'dot.png', contentType: 'image/png', size: image.length })).result!.data;
    const id = created.attachmentId;
    const program = Buffer.concat([elf(), Buffer.alloc(image.length)]).subarray(0, image.length);
    expect((await upload(t, created.upload, program, 'image/png')).status).toBe(200);
    expect([await exists(objectPath(id)), await exists(objectPath(id, 'uploads'))]).toEqual([false, true]);
    expect(await t.sql('select upload_checked from attachments where id = $1', [id])).toEqual([{ upload_checked: false }]);
    expect((await upload(t, created.upload, image, 'image/png')).status).toBe(200);
    expect([await exists(objectPath(id)), await exists(objectPath(id, 'uploads'))]).toEqual([true, false]);
    expect((await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] })).result!.data.attachments![0]!.id).toBe(id);
  });

  it('a file at the file key that no checked upload put there is checked by the send', async ({ t, pair }) => {
    // What an earlier version leaves of a send refused for its content: the bytes at the file key.
    const image = await png(16, 16);
    const created = (await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'dot.png', contentType: 'image/png', size: image.length })).result!.data;
    const id = created.attachmentId;
    const program = Buffer.concat([elf(), Buffer.alloc(image.length)]).subarray(0, image.length);
    await t.app.services.attachments.storage.write(`files/${id}`, program, 'image/png');
    // A good upload then finds the file key taken: its bytes are discarded, and nothing says the file was checked.
    expect((await upload(t, created.upload, image, 'image/png')).status).toBe(200);
    expect(await t.sql('select upload_checked from attachments where id = $1', [id])).toEqual([{ upload_checked: false }]);
    const refused = await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] });
    expect(refused.error!.data.details.fields!.attachmentIds![0]).toMatch(/is not image\/png \(its content is application\/x-elf\)/);
  });

  it('a send refuses what was never uploaded, a wrong size, another room’s or another user’s attachment, and one already used', async ({ t, pair }) => {
    const fields = async (input: Parameters<typeof send>[2], token = pair.alice) => (await send(t, token, input)).error?.data.details.fields?.attachmentIds?.[0];
    const never = (await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'a.txt', contentType: 'text/plain', size: 5 })).result!.data.attachmentId;
    expect(await fields({ roomId: pair.roomId, attachmentIds: [never] })).toMatch(/has not been uploaded/);

    const short = await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'b.txt', contentType: 'text/plain', size: 10 });
    await upload(t, short.result!.data.upload, Buffer.from('abc'), 'text/plain');
    expect(await fields({ roomId: pair.roomId, attachmentIds: [short.result!.data.attachmentId] })).toMatch(/is 3 bytes, not the 10/);

    const elsewhere = await uploaded(t, pair.alice, pair.otherRoomId, Buffer.from('hi'), 'text/plain', 'c.txt');
    expect(await fields({ roomId: pair.roomId, attachmentIds: [elsewhere] })).toMatch(/No attachment .* of yours in this room/);
    const alices = await uploaded(t, pair.alice, pair.roomId, Buffer.from('hi'), 'text/plain', 'd.txt');
    expect(await fields({ roomId: pair.roomId, attachmentIds: [alices] }, pair.bob)).toMatch(/No attachment .* of yours in this room/);

    expect((await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [alices] })).result).toBeDefined();
    expect(await fields({ roomId: pair.roomId, attachmentIds: [alices] })).toMatch(/already part of a message/);
  });

  it('two sends racing for one attachment: one gets it, the other is refused alone', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.roomId, Buffer.from('race'), 'text/plain', 'race.txt');
    const results = await Promise.all([1, 2].map((n) => send(t, pair.alice, { roomId: pair.roomId, content: `racer ${n}`, attachmentIds: [id] })));
    expect(results.filter((r) => r.result).length).toBe(1);
    expect(results.find((r) => r.error)!.error!.data.parleyCode).toBe('INVALID_INPUT');
    expect(await t.sql('select count(*)::int as n from messages where attachments @> $1::jsonb', [JSON.stringify([{ id }])])).toEqual([{ n: 1 }]);
  });

  it('a send that finds one of its attachments taken after its checks (by another instance) stores nothing and marks none of its others', async ({ t, pair }) => {
    const a = await uploaded(t, pair.alice, pair.roomId, Buffer.from('shared'), 'text/plain', 'shared.txt');
    const b = await uploaded(t, pair.alice, pair.roomId, Buffer.from('own'), 'text/plain', 'own.txt');
    {
      // The room's row held: the send waits in its statement after its checks pass.
      await using room = await holdRoom(t, pair.roomId);
      const attachments = t.app.services.attachments;
      const prepare = attachments.prepare;
      const checked = new Promise<void>((resolve) => {
        vi.spyOn(attachments, 'prepare').mockImplementationOnce((...args) => prepare.apply(attachments, args).finally(resolve));
      });
      const sent = send(t, pair.alice, { roomId: pair.roomId, content: 'second', attachmentIds: [b, a] });
      await checked;
      vi.mocked(attachments.prepare).mockRestore();
      // What another instance's send of `a` does, committed first.
      await t.sql("update attachments set status = 'ready', message_id = gen_random_uuid() where id = $1", [a]);
      await room.release();
      const refused = await sent;
      expect(refused.error!.data.parleyCode).toBe('INVALID_INPUT');
      expect(refused.error!.data.details.fields!.attachmentIds![0]).toBe('An attachment was attached to another message meanwhile.');
    }
    expect(await t.sql("select count(*)::int as n from messages where content = 'second' and chat_room_id = $1", [pair.roomId])).toEqual([{ n: 0 }]);
    expect(await t.sql('select status, message_id from attachments where id = $1', [b])).toEqual([{ status: 'pending', message_id: null }]);
    // Still the caller's to send.
    expect((await send(t, pair.alice, { roomId: pair.roomId, content: 'again', attachmentIds: [b] })).result!.data.attachments!.map((x) => x.id)).toEqual([b]);
  });

  it('a second send of an attachment while the first is still being stored is refused at once, without waiting for or failing the first', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.roomId, Buffer.from('twice'), 'text/plain', 'twice.txt');
    await using room = await holdRoom(t, pair.roomId);
    const first = send(t, pair.alice, { roomId: pair.roomId, content: 'first', attachmentIds: [id] });
    await vi.waitFor(async () => expect(await t.sql("select 1 from pg_stat_activity where wait_event_type = 'Lock' and query like '%attachments%'")).toHaveLength(1), { timeout: 5_000 });
    // In upper case too: the same attachment.
    const second = await Promise.race([send(t, pair.alice, { roomId: pair.roomId, content: 'second', attachmentIds: [id.toUpperCase()] }), new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), 5_000))]);
    expect(second === 'waiting' ? second : second.error!.data.details.fields!.attachmentIds![0]).toBe(`Attachment ${id.toUpperCase()} is already part of a message.`);
    await room.release();
    expect((await first).result!.data.attachments!.map((x) => x.id)).toEqual([id]);
  });

  it('a send with an attachment into a room with a block is refused, and the attachment stays its uploader’s to send once the block is lifted', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.otherRoomId, Buffer.from('held'), 'text/plain', 'held.txt');
    expect((await trpcHttp(t.url, 'users.block', { userId: 'alice' }, pair.carol)).error).toBeUndefined();
    try {
      const refused = await send(t, pair.alice, { roomId: pair.otherRoomId, content: 'blocked', attachmentIds: [id] });
      expect(refused.error!.data.parleyCode).toBe('BLOCKED');
      expect(await t.sql('select status, message_id from attachments where id = $1', [id])).toEqual([{ status: 'pending', message_id: null }]);
    } finally {
      expect((await trpcHttp(t.url, 'users.unblock', { userId: 'alice' }, pair.carol)).error).toBeUndefined();
    }
    expect((await send(t, pair.alice, { roomId: pair.otherRoomId, attachmentIds: [id] })).result!.data.attachments!.map((x) => x.id)).toEqual([id]);
  });

  it('a retried send with its clientId returns the first message', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.roomId, Buffer.from('once'), 'text/plain', 'once.txt');
    const first = await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id], clientId: 'attach-retry' });
    const again = await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id], clientId: 'attach-retry' });
    expect(again.result!.data.id).toBe(first.result!.data.id);
  });

  it('content may be empty only with attachments; at most 10 attachments', async ({ t, pair }) => {
    expect((await send(t, pair.alice, { roomId: pair.roomId, content: '  ' })).error!.data.details.fields).toEqual({ content: ['This field may not be blank.'] });
    const eleven = Array.from({ length: 11 }, () => crypto.randomUUID());
    expect((await send(t, pair.alice, { roomId: pair.roomId, content: 'x', attachmentIds: eleven })).error!.data.details.fields).toEqual({ attachmentIds: ['Ensure this field has no more than 10 elements.'] });
  });

  it('createUpload is for participants, within the size limit and the allowed types', async ({ t, pair }) => {
    const input = { roomId: pair.roomId, name: 'a.png', contentType: 'image/png', size: 10 };
    expect((await createUpload(t, pair.carol, input)).error!.data.parleyCode).toBe('ROOM_NOT_FOUND');
    expect((await createUpload(t, pair.alice, { ...input, size: 1024 * 1024 + 1 })).error!.data.parleyCode).toBe('PAYLOAD_TOO_LARGE');
    expect((await createUpload(t, pair.alice, { ...input, contentType: 'application/x-msdownload' })).error!.data.details.fields).toEqual({
      contentType: ['Files of type application/x-msdownload are not accepted.'],
    });
    expect((await createUpload(t, pair.alice, { ...input, name: '../etc/passwd' })).error!.data.details.fields).toEqual({ name: ['File names may not contain control characters, / or \\.'] });
  });

  it('fresh URLs go to participants only', async ({ t, pair }) => {
    const id = await uploaded(t, pair.alice, pair.roomId, Buffer.from('secret'), 'text/plain', 's.txt');
    await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] });
    const fresh = await trpcHttp(t.url, 'attachments.url', { attachmentId: id }, pair.bob, 'query');
    expect(fresh.result!.data).toEqual({ url: expect.stringMatching(/^\/files\/files\//), expiresAt: expect.any(String) });
    const foreign = await trpcHttp(t.url, 'attachments.url', { attachmentId: id }, pair.carol, 'query');
    expect(foreign.error!.data.parleyCode).toBe('ATTACHMENT_NOT_FOUND');
    expect((await trpcHttp(t.url, 'attachments.url', { attachmentId: crypto.randomUUID() }, pair.alice, 'query')).error!.data.parleyCode).toBe('ATTACHMENT_NOT_FOUND');
  });

  it('legacy REST and ws/chat keep their five fields: the text, or a placeholder for a message of attachments alone', async ({ t, pair }) => {
    const socket = await openLegacySocket(t.url, 'bob', 'alice', pair.bob);
    const image = await uploaded(t, pair.alice, pair.roomId, await png(8, 8));
    const file = await uploaded(t, pair.alice, pair.roomId, Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n', 'latin1'), 'application/pdf', 'doc.pdf');
    const bare = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [image, file] })).result!.data;
    const textFile = await uploaded(t, pair.alice, pair.roomId, Buffer.from('x'), 'text/plain', 'x.txt');
    const worded = (await send(t, pair.alice, { roomId: pair.roomId, content: 'with words', attachmentIds: [textFile] })).result!.data;

    const frame = await socket.waitFor((f) => f.action === 'new_message' && f.message.id === bare.id);
    expect(frame).toEqual({ action: 'new_message', message: { id: bare.id, chat_room: pair.roomId, sender: 'alice', content: '[image] [file]', created_at: bare.created_at } });
    socket.close();
    const history = (await (await fetch(`${t.url}/${pair.roomId}/messages/`, { headers: { authorization: `Bearer ${pair.bob}` } })).json()) as Array<Record<string, unknown>>;
    expect(history.find((m) => m.id === bare.id)).toEqual({ id: bare.id, chat_room: pair.roomId, sender: 'alice', content: '[image] [file]', created_at: bare.created_at });
    expect(history.find((m) => m.id === worded.id)!.content).toBe('with words');
  });
});

describe('the local store’s signed URLs', () => {
  it('an upload larger than its policy is refused, by Content-Length or while streaming, and leaves nothing', async ({ t, pair }) => {
    const created = (await createUpload(t, pair.alice, { roomId: pair.roomId, name: 'big.txt', contentType: 'text/plain', size: 10 })).result!.data;
    const url = absolute(t, created.upload.url);
    const declared = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: Buffer.alloc(11, 97) });
    expect(declared.status).toBe(413);
    const chunks = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 4; i++) controller.enqueue(new Uint8Array(8).fill(98));
        controller.close();
      },
    });
    const streamed = await fetch(url, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: chunks, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(await exists(objectPath(created.attachmentId, 'uploads'))).toBe(false);
    const wrongType = await fetch(url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: Buffer.alloc(4) });
    expect(wrongType.status).toBe(403);
  });

  it('a tampered or foreign signature, or an expired URL, is refused on download', async ({ t, pair }) => {
    const a = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [await uploaded(t, pair.alice, pair.roomId, Buffer.from('aaa'), 'text/plain', 'a.txt')] })).result!.data;
    const b = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [await uploaded(t, pair.alice, pair.roomId, Buffer.from('bbb'), 'text/plain', 'b.txt')] })).result!.data;
    const urlA = new URL(absolute(t, a.attachments![0]!.url));
    const foreign = new URL(urlA);
    foreign.pathname = `/files/files/${b.attachments![0]!.id}`;
    expect((await fetch(foreign)).status).toBe(403);
    const later = new URL(urlA);
    later.searchParams.set('X-Parley-Expires', String(Number(urlA.searchParams.get('X-Parley-Expires')) + 3600));
    expect((await fetch(later)).status).toBe(403);
    const inline = new URL(urlA);
    inline.searchParams.set('disposition', 'inline');
    expect((await fetch(inline)).status).toBe(403);
    const expired = await t.app.services.localFiles!.downloadUrl(`files/${a.attachments![0]!.id}`, { contentType: 'text/plain', fileName: 'a.txt', inline: false, expiresAt: new Date(Date.now() - 1000) });
    const res = await fetch(absolute(t, expired));
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ detail: 'The URL has expired.' });
    expect((await fetch(urlA)).status).toBe(200);
  });

  it('Range requests: a range, a suffix, an open end, one past the end, and HEAD', async ({ t, pair }) => {
    const body = Buffer.from('0123456789');
    const m = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [await uploaded(t, pair.alice, pair.roomId, body, 'text/plain', 'digits.txt')] })).result!.data;
    const url = absolute(t, m.attachments![0]!.url);
    const part = await fetch(url, { headers: { range: 'bytes=2-5' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 2-5/10');
    expect(await part.text()).toBe('2345');
    const suffix = await fetch(url, { headers: { range: 'bytes=-3' } });
    expect([suffix.status, await suffix.text()]).toEqual([206, '789']);
    const open = await fetch(url, { headers: { range: 'bytes=7-' } });
    expect([open.status, await open.text()]).toEqual([206, '789']);
    const past = await fetch(url, { headers: { range: 'bytes=10-' } });
    expect([past.status, past.headers.get('content-range')]).toEqual([416, 'bytes */10']);
    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), head.headers.get('accept-ranges')]).toEqual([200, '10', 'bytes']);
  });

  it('many small uploads at once, sent in messages of ten', async ({ t, pair }) => {
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => uploaded(t, pair.alice, pair.roomId, Buffer.from(`file ${i}\n`), 'text/plain', `f${i}.txt`)));
    const sends = await Promise.all(Array.from({ length: 6 }, (_, k) => send(t, pair.alice, { roomId: pair.roomId, content: `batch ${k}`, attachmentIds: ids.slice(k * 10, k * 10 + 10) })));
    expect(sends.map((s) => s.error)).toEqual(Array(6).fill(undefined));
    expect(new Set(sends.flatMap((s) => s.result!.data.attachments!.map((a) => a.id)))).toEqual(new Set(ids));
    const body = await (await fetch(absolute(t, sends[5]!.result!.data.attachments![9]!.url))).text();
    expect(body).toBe('file 59\n');
  });
});

describe('thumbnails', () => {
  it('an image gets its size and a WebP thumbnail off the request path, announced as message_updated', async ({ t, pair }) => {
    const bob = await t.client('bob');
    const events: Array<{ type: string; message?: Message }> = [];
    const sub = bob.messages.onEvent.subscribe({ roomId: pair.roomId, presence: false }, { onData: ({ data }) => events.push(data as never) });
    await new Promise((r) => setTimeout(r, 200));
    const id = await uploaded(t, pair.alice, pair.roomId, await png(800, 400));
    const sent = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] })).result!.data;
    await t.app.services.attachments.runJobs();
    await vi.waitFor(() => expect(events.find((e) => e.type === 'message_updated' && e.message!.id === sent.id)).toBeDefined(), { timeout: 5_000 });
    const updated = events.find((e) => e.type === 'message_updated')!.message!;
    expect(updated.attachments![0]).toMatchObject({ id, width: 800, height: 400, url: expect.stringMatching(/^\/files\/files\//), thumbnailUrl: expect.stringMatching(/^\/files\/thumbs\//) });
    sub.unsubscribe();
    const thumb = await fetch(absolute(t, updated.attachments![0]!.thumbnailUrl!));
    expect(thumb.headers.get('content-type')).toBe('image/webp');
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 320, 160]);
    const [listed] = (await list(t, pair.alice, pair.roomId)).filter((m) => m.id === sent.id);
    expect(listed!.attachments![0]).toMatchObject({ width: 800, height: 400, thumbnailUrl: expect.any(String) });
    const fresh = await trpcHttp(t.url, 'attachments.url', { attachmentId: id }, pair.bob, 'query');
    expect(fresh.result!.data).toMatchObject({ thumbnailUrl: expect.stringMatching(/^\/files\/thumbs\//) });
  });

  it('an image that cannot be decoded is given up on after a few tries; its message stays as it was', async ({ t, pair }) => {
    // A PNG signature with garbage behind it passes the type check but not the decoder.
    const broken = Buffer.concat([(await png(4, 4)).subarray(0, 16), Buffer.alloc(64, 7)]);
    const id = await uploaded(t, pair.alice, pair.roomId, broken);
    await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [id] });
    for (let i = 0; i < 3; i++) {
      await t.sql('update attachments set next_try_at = now() where id = $1', [id]);
      await t.app.services.attachments.runJobs();
    }
    expect(await t.sql('select thumb_state from attachments where id = $1', [id])).toEqual([{ thumb_state: 'failed' }]);
  });
});

describe('deletion and the sweep', () => {
  it('deleting the message deletes its objects and its rows; the URLs then find nothing', async ({ t, pair }) => {
    const m = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [await uploaded(t, pair.alice, pair.roomId, Buffer.from('bye'), 'text/plain', 'bye.txt')] })).result!.data;
    const id = m.attachments![0]!.id;
    expect(await exists(objectPath(id))).toBe(true);
    const deleted = await trpcHttp(t.url, 'messages.delete', { roomId: pair.roomId, messageId: m.id }, pair.alice);
    expect((deleted.result!.data as Message).attachments).toBeUndefined();
    await t.app.services.attachments.runJobs();
    expect(await exists(objectPath(id))).toBe(false);
    expect(await t.sql('select id from attachments where id = $1', [id])).toEqual([]);
    expect((await fetch(absolute(t, m.attachments![0]!.url))).status).toBe(404);
  });

  it('a moderator’s hard delete and an erasure delete the files too, and no row names the erased user', async ({ t, pair }) => {
    const hard = (await send(t, pair.alice, { roomId: pair.roomId, attachmentIds: [await uploaded(t, pair.alice, pair.roomId, Buffer.from('evidence'), 'text/plain', 'a.txt')] })).result!.data;
    expect((await trpcHttp(t.url, 'admin.messages.delete', { messageId: hard.id, hard: true }, ADMIN_TOKEN)).error).toBeUndefined();
    const dave = await t.token('dave-erased');
    const roomId = ((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, dave)).result!.data as { id: string }).id;
    const sent = (await send(t, dave, { roomId, attachmentIds: [await uploaded(t, dave, roomId, Buffer.from('mine'), 'text/plain', 'dave-erased.txt')] })).result!.data;
    const unsent = await uploaded(t, dave, roomId, Buffer.from('never sent'), 'text/plain', 'draft.txt');
    expect((await trpcHttp(t.url, 'admin.users.erase', { userId: 'dave-erased' }, ADMIN_TOKEN)).error).toBeUndefined();
    await t.app.services.attachments.runJobs();
    for (const id of [hard.attachments![0]!.id, sent.attachments![0]!.id]) expect(await exists(objectPath(id))).toBe(false);
    expect(await exists(objectPath(unsent, 'uploads'))).toBe(false);
    expect(await t.sql("select id from attachments where uploader_id = 'dave-erased' or name like 'dave-erased%'")).toEqual([]);
  });
});

attachmentSuite(`${import.meta.filename}-suite`, {
  enforcesSignatures: true,
  expiredUploadBody: { detail: 'The URL has expired.' },
  async start() {
    const dir = mkdtempSync(join(tmpdir(), 'parley-attach-suite-'));
    return { env: { DATA_DIR: dir }, stop: async () => rmSync(dir, { recursive: true, force: true }) };
  },
});
