import sharp from 'sharp';
import type { CreatedUpload, Message } from '../../contracts/index.ts';
import { trpcHttp } from './raw-trpc.ts';
import type { TestApp } from './test-app.ts';

/** A real PNG of the given size. */
export const png = (width = 640, height = 480) => sharp({ create: { width, height, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer();

/** The first bytes of a Linux executable, padded: what a `.png` that is really a program starts with. */
export const elf = () => Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(200, 1)]);

/** A URL the server handed out, made absolute (the local store's are relative to Parley). */
export const absolute = (t: Pick<TestApp, 'url'>, url: string) => (url.startsWith('/') ? t.url + url : url);

export async function createUpload(t: TestApp, token: string, input: { roomId: string; name: string; contentType: string; size: number }) {
  return trpcHttp(t.url, 'attachments.createUpload', input, token) as Promise<{ status: number; result?: { data: CreatedUpload }; error?: { data: { parleyCode: string; details: { fields?: Record<string, string[]> } } } }>;
}

/** Uploads `body` as the upload target says: a PUT of the bytes, or a POST form (S3's presigned POST). */
export async function upload(t: Pick<TestApp, 'url'>, target: CreatedUpload['upload'], body: Buffer, contentType: string) {
  if (target.method === 'PUT') {
    return fetch(absolute(t, target.url), { method: 'PUT', headers: { ...target.headers, 'content-type': target.headers?.['content-type'] ?? contentType }, body });
  }
  const form = new FormData();
  for (const [k, v] of Object.entries(target.fields ?? {})) form.append(k, v);
  form.append('file', new Blob([body], { type: contentType }));
  return fetch(absolute(t, target.url), { method: 'POST', body: form });
}

/** createUpload + upload; returns the attachment id. */
export async function uploaded(t: TestApp, token: string, roomId: string, body: Buffer, contentType = 'image/png', name = 'picture.png') {
  const created = await createUpload(t, token, { roomId, name, contentType, size: body.length });
  if (!created.result) throw new Error(`createUpload failed: ${JSON.stringify(created.error)}`);
  const res = await upload(t, created.result.data.upload, body, contentType);
  if (!res.ok) throw new Error(`upload failed: ${res.status} ${await res.text()}`);
  return created.result.data.attachmentId;
}

export async function send(t: TestApp, token: string, input: { roomId: string; content?: string; attachmentIds?: string[]; clientId?: string }) {
  return trpcHttp(t.url, 'messages.send', { content: '', ...input }, token) as Promise<{ status: number; result?: { data: Message }; error?: { data: { parleyCode: string; details: { fields?: Record<string, string[]> } } } }>;
}
