import type { ChatClient } from '../../client-sdk/index.ts';

/** Uploads a picked file straight to storage as the server's upload target says; returns its attachment id. */
export async function uploadFile(chat: ChatClient, roomId: string, file: File): Promise<string> {
  const contentType = file.type || 'application/octet-stream';
  const { attachmentId, upload } = await chat.attachments.createUpload.mutate({ roomId, name: file.name, contentType, size: file.size });
  let res: Response;
  if (upload.method === 'PUT') {
    res = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: file });
  } else {
    const form = new FormData();
    for (const [k, v] of Object.entries(upload.fields ?? {})) form.append(k, v);
    form.append('file', file);
    res = await fetch(upload.url, { method: 'POST', body: form });
  }
  if (!res.ok) throw new Error(`upload of ${file.name} failed (${res.status})`);
  return attachmentId;
}
