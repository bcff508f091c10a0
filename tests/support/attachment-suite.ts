import { describe, expect, test } from 'vitest';
import type { Message } from '../../contracts/index.ts';
import { absolute, createUpload, elf, png, send, upload, uploaded } from './attachments.ts';
import { trpcHttp } from './raw-trpc.ts';
import { startTestApp, type TestApp } from './test-app.ts';

export interface StorageBackend {
  /** Starts what the backend needs; `env` configures Parley for it. */
  start(): Promise<{ env: Record<string, string>; stop(): Promise<void> }>;
  /**
   * Whether the store itself refuses what its signatures do not allow: uploads past their policy
   * (size, expiry) and URLs whose signature does not match. Parley's local store does; the S3
   * stand-in the tests run does not verify SigV4 (see tests/attachments.s3.test.ts).
   */
  enforcesSignatures: boolean;
  /** The body of the store's answer to an upload past its URL's expiry, where the store writes one of its own. */
  expiredUploadBody?: unknown;
}

interface Ctx {
  t: TestApp;
  env: Record<string, string>;
  alice: string;
  bob: string;
  carol: string;
  roomId: string;
}

/** What every storage backend must do, end to end through Parley. */
export function attachmentSuite(file: string, backend: StorageBackend) {
  const it = test.extend<{ $file: { ctx: Ctx } }>({
    ctx: [
      async ({}, use) => {
        const started = await backend.start();
        try {
          await using t = await startTestApp(file, started.env);
          const [alice, bob, carol] = await Promise.all([t.token('alice'), t.token('bob'), t.token('carol')]);
          const roomId = ((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, alice)).result!.data as { id: string }).id;
          await use({ t, env: started.env, alice, bob, carol, roomId });
        } finally {
          await started.stop();
        }
      },
      { scope: 'file' },
    ],
  });
  const sizeOf = (t: TestApp, key: string) => t.app.services.attachments.storage.size(key);
  const sendFile = async (c: Ctx, body: Buffer, contentType = 'text/plain', name = 'f.txt') =>
    (await send(c.t, c.alice, { roomId: c.roomId, attachmentIds: [await uploaded(c.t, c.alice, c.roomId, body, contentType, name)] })).result!.data;

  describe('any storage backend', () => {
    it('an image uploaded within its policy is sent, listed and downloaded by the other participant', async ({ ctx: c }) => {
      const image = await png(16, 16);
      const sent = await sendFile(c, image, 'image/png', 'dot.png');
      const listed = (await trpcHttp(c.t.url, 'messages.list', { roomId: c.roomId, direction: 'backward', limit: 1 }, c.bob, 'query')).result!.data as { items: Message[] };
      const [attachment] = listed.items[0]!.attachments!;
      expect(attachment).toMatchObject({ id: sent.attachments![0]!.id, name: 'dot.png', contentType: 'image/png', size: image.length });
      const res = await fetch(absolute(c.t, attachment!.url));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('content-disposition')).toMatch(/^inline;/);
      expect(Buffer.from(await res.arrayBuffer()).equals(image)).toBe(true);
    });

    it('a declared image/png that is really an executable is refused at send', async ({ ctx: c }) => {
      const id = await uploaded(c.t, c.alice, c.roomId, elf(), 'image/png', 'cat.png');
      const refused = await send(c.t, c.alice, { roomId: c.roomId, attachmentIds: [id] });
      expect(refused.error!.data.details.fields!.attachmentIds![0]).toMatch(/is not image\/png/);
    });

    it('a re-upload after a send’s checks never replaces the file that send stored', async ({ ctx: c }) => {
      const image = await png(16, 16);
      const created = (await createUpload(c.t, c.alice, { roomId: c.roomId, name: 'dot.png', contentType: 'image/png', size: image.length })).result!.data;
      const id = created.attachmentId;
      expect((await upload(c.t, created.upload, image, 'image/png')).ok).toBe(true);
      // One send's checks: the upload moves to the file key and passes. Its statement then stores
      // nothing (a block came between, say), so the attachment is still pending and a second send
      // of it goes ahead.
      await c.t.app.services.attachments.prepare(c.roomId, 'alice', [id]);
      c.t.app.services.attachments.finished([id]);
      // The upload URL is still valid: an executable of the image's size goes to it.
      const program = Buffer.concat([elf(), Buffer.alloc(image.length)]).subarray(0, image.length);
      expect((await upload(c.t, created.upload, program, 'image/png')).ok).toBe(true);
      // The second send finds the file there and checks it, not the re-upload, which is discarded.
      const sent = await send(c.t, c.alice, { roomId: c.roomId, attachmentIds: [id] });
      expect(sent.error).toBeUndefined();
      expect(sent.result!.data.attachments![0]).toMatchObject({ id, contentType: 'image/png', size: image.length });
      expect(Buffer.from(await (await fetch(absolute(c.t, sent.result!.data.attachments![0]!.url))).arrayBuffer()).equals(image)).toBe(true);
      expect(await sizeOf(c.t, `uploads/${id}`)).toBeUndefined();
    });

    it('an upload larger than declared never becomes part of a message', async ({ ctx: c }) => {
      const created = (await createUpload(c.t, c.alice, { roomId: c.roomId, name: 'big.txt', contentType: 'text/plain', size: 10 })).result!.data;
      const res = await upload(c.t, created.upload, Buffer.alloc(11, 97), 'text/plain');
      if (backend.enforcesSignatures) expect(res.ok).toBe(false);
      const refused = await send(c.t, c.alice, { roomId: c.roomId, attachmentIds: [created.attachmentId] });
      expect(refused.error!.data.parleyCode).toBe('INVALID_INPUT');
    });

    it('a non-participant gets no URL; another attachment’s signature does not open this one', async ({ ctx: c }) => {
      const a = await sendFile(c, Buffer.from('aaa'));
      const b = await sendFile(c, Buffer.from('bbb'));
      expect((await trpcHttp(c.t.url, 'attachments.url', { attachmentId: a.attachments![0]!.id }, c.carol, 'query')).error!.data.parleyCode).toBe('ATTACHMENT_NOT_FOUND');
      const fresh = (await trpcHttp(c.t.url, 'attachments.url', { attachmentId: a.attachments![0]!.id }, c.bob, 'query')).result!.data as { url: string };
      expect(await (await fetch(absolute(c.t, fresh.url))).text()).toBe('aaa');
      if (!backend.enforcesSignatures) return;
      const foreign = new URL(absolute(c.t, a.attachments![0]!.url));
      foreign.pathname = foreign.pathname.replace(a.attachments![0]!.id, b.attachments![0]!.id);
      expect((await fetch(foreign)).status).toBe(403);
    });

    it('Range requests', async ({ ctx: c }) => {
      const m = await sendFile(c, Buffer.from('0123456789'));
      const part = await fetch(absolute(c.t, m.attachments![0]!.url), { headers: { range: 'bytes=2-5' } });
      expect([part.status, part.headers.get('content-range'), await part.text()]).toEqual([206, 'bytes 2-5/10', '2345']);
    });

    it('many small uploads at once', async ({ ctx: c }) => {
      const ids = await Promise.all(Array.from({ length: 40 }, (_, i) => uploaded(c.t, c.alice, c.roomId, Buffer.from(`file ${i}`), 'text/plain', `f${i}.txt`)));
      const sends = await Promise.all(Array.from({ length: 4 }, (_, k) => send(c.t, c.alice, { roomId: c.roomId, attachmentIds: ids.slice(k * 10, k * 10 + 10) })));
      expect(sends.flatMap((s) => s.result!.data.attachments!.map((a) => a.id)).sort()).toEqual([...ids].sort());
    });

    it('deleting the message deletes its object', async ({ ctx: c }) => {
      const m = await sendFile(c, Buffer.from('bye'));
      const id = m.attachments![0]!.id;
      expect(await sizeOf(c.t, `files/${id}`)).toBe(3);
      await trpcHttp(c.t.url, 'messages.delete', { roomId: c.roomId, messageId: m.id }, c.alice);
      await c.t.app.services.attachments.runJobs();
      expect(await sizeOf(c.t, `files/${id}`)).toBeUndefined();
      expect(await c.t.sql('select id from attachments where id = $1', [id])).toEqual([]);
    });

    it('expired URLs are refused; a pending upload is swept', async ({ ctx: c }) => {
      await using t = await startTestApp(`${file}-short`, { ...c.env, ATTACHMENT_UPLOAD_TTL: '1', ATTACHMENT_PENDING_TTL: '2' });
      const alice = await t.token('alice');
      const roomId = ((await trpcHttp(t.url, 'rooms.open', { otherUserId: 'bob' }, alice)).result!.data as { id: string }).id;
      const late = (await createUpload(t, alice, { roomId, name: 'late.txt', contentType: 'text/plain', size: 4 })).result!.data;
      // The upload must land within the URL's one second: on a busy machine that can take more than
      // one try, and each refused try leaves a pending row of its own for the sweep.
      let kept: string | undefined;
      let tries = 0;
      while (!kept && tries < 10) {
        tries++;
        kept = await uploaded(t, alice, roomId, Buffer.from('kept'), 'text/plain', 'kept.txt').catch(() => undefined);
      }
      expect(kept).toBeDefined();
      // Where the upload's bytes are: at its upload key, or (a store that checks uploads as they
      // arrive) at its file key.
      const storage = t.app.services.attachments.storage;
      const key = (await storage.size(`uploads/${kept}`)) === undefined ? `files/${kept}` : `uploads/${kept}`;
      expect(await storage.size(key)).toBe(4);
      // Not yet: a pending upload is swept only once ATTACHMENT_PENDING_TTL has passed.
      expect((await t.app.services.attachments.runJobs()).swept).toBe(0);
      const download = await storage.downloadUrl(key, { contentType: 'text/plain', fileName: 'kept.txt', inline: false, expiresAt: new Date(Date.now() + 1000) });
      await new Promise((r) => setTimeout(r, 2_100));
      expect((await fetch(absolute(t, download))).status).toBe(403);
      if (backend.enforcesSignatures) {
        const refused = await upload(t, late.upload, Buffer.from('late'), 'text/plain');
        expect(refused.status).toBe(403);
        if (backend.expiredUploadBody) expect(await refused.json()).toEqual(backend.expiredUploadBody);
      }
      expect(await t.app.services.attachments.runJobs()).toMatchObject({ swept: tries + 1, deleted: tries + 1 });
      expect(await storage.size(key)).toBeUndefined();
      expect(await t.sql('select id from attachments')).toEqual([]);
    });
  });
}
