import { TRPCClientError as AppTRPCClientError } from '@trpc/client';
import { describe, expect, vi } from 'vitest';
import { createChatClient, parleyCodeOf, parleyErrorOf, TRPCClientError, type ConnectionState, type PendingMessage } from '../client-sdk/index.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import { appTest } from './support/test-app.ts';

const it = appTest(import.meta.filename);

describe('connection state', () => {
  it('goes idle → connecting → open, then reconnecting with the close reason when the server drops the socket, then open again', async ({ t }) => {
    const chat = createChatClient({ url: t.url, token: await t.token('conn-a'), retryDelayMs: () => 50 });
    const seen: ConnectionState[] = [];
    chat.connection.subscribe((s) => seen.push(s));
    expect(chat.connection.get()).toEqual({ status: 'idle' });
    const room = await chat.rooms.open.mutate({ otherUserId: 'conn-b' });
    const sub = chat.messages.onEvent.subscribe({ roomId: room.id }, { onData: () => {} });
    await vi.waitFor(() => expect(chat.connection.get().status).toBe('open'));
    for (const socket of t.app.fastify.websocketServer.clients) socket.close(4001, 'slow consumer');
    await vi.waitFor(() => expect(seen.map((s) => s.status)).toContain('reconnecting'));
    await vi.waitFor(() => expect(chat.connection.get().status).toBe('open'));
    expect(seen.find((s) => s.status === 'reconnecting')).toEqual({ status: 'reconnecting', closeCode: 4001, closeReason: 'the connection fell too far behind' });
    expect(seen.map((s) => s.status)).toEqual(['connecting', 'open', 'reconnecting', 'open']);
    sub.unsubscribe();
    await chat.close();
  });
});

describe('outbox', () => {
  it('sends made while the server is unreachable wait, then go out in order once, each stored once by its clientId', async ({ t }) => {
    const proxy = await startTcpProxy(t.url);
    const chat = createChatClient({ url: proxy.url, token: await t.token('out-a') });
    try {
      const room = await chat.rooms.open.mutate({ otherUserId: 'out-b' });
      await proxy.down();
      const views: Array<readonly PendingMessage[]> = [];
      chat.outbox.subscribe((p) => views.push(p));
      const sends = ['one', 'two', 'three'].map((content, i) => chat.outbox.send(room.id, content, `cid-${i}`));
      await vi.waitFor(() => expect(chat.outbox.pending().map((p) => [p.content, p.status])).toEqual([['one', 'queued'], ['two', 'queued'], ['three', 'queued']]));
      expect(chat.outbox.pending()[0]!.error).toBeInstanceOf(TRPCClientError);
      expect(parleyCodeOf(chat.outbox.pending()[0]!.error)).toBeUndefined();
      await proxy.up();
      chat.outbox.flush();
      const stored = await Promise.all(sends);
      expect(stored.map((m) => [m.content, m.seq])).toEqual([['one', 1], ['two', 2], ['three', 3]]);
      expect(chat.outbox.pending()).toEqual([]);
      expect(await t.sql('select client_id from messages where chat_room_id = $1 order by seq', [room.id])).toEqual([{ client_id: 'cid-0' }, { client_id: 'cid-1' }, { client_id: 'cid-2' }]);
      // The same clientId sent again (a retry whose answer was lost) is still one message.
      await chat.outbox.send(room.id, 'one', 'cid-0');
      expect(await t.sql('select count(*)::int as n from messages where chat_room_id = $1', [room.id])).toEqual([{ n: 3 }]);
      expect(views.some((v) => v.some((p) => p.status === 'sending'))).toBe(true);
    } finally {
      await chat.close();
      await proxy.close();
    }
  });

  it('a send the server refuses for good rejects with its code and leaves the outbox', async ({ t }) => {
    const chat = await t.client('out-c');
    const err = await chat.outbox.send(crypto.randomUUID(), 'to nowhere').catch((e: unknown) => e);
    expect(parleyCodeOf(err)).toBe('ROOM_NOT_FOUND');
    expect(chat.outbox.pending()).toEqual([]);
  });
});

describe('read markers', () => {
  it('a screen marking every message it shows moves the marker to the newest in a few calls, not one per message', async ({ t }) => {
    const [a, b] = await Promise.all([t.client('read-a'), t.client('read-b')]);
    const alice = createChatClient({ url: t.url, token: await t.token('read-a'), markReadEveryMs: 300 });
    const room = await a.rooms.open.mutate({ otherUserId: 'read-b' });
    for (let i = 1; i <= 30; i++) await b.messages.send.mutate({ roomId: room.id, content: `m${i}` });
    await Promise.all(Array.from({ length: 30 }, (_, i) => alice.reads.mark(room.id, i + 1)));
    const listed = (await a.rooms.list.query({})).items.find((r) => r.id === room.id)!;
    expect([listed.read_seq, listed.unread]).toEqual([30, 0]);
    const { n } = (await t.sql<{ n: number }>(`select count(*)::int as n from room_changes where chat_room_id = $1 and event->>'type' = 'read'`, [room.id]))[0]!;
    // The first mark goes at once, the 29 that follow within the spacing go as one.
    expect(n).toBe(2);
    await alice.close();
  });

  it('a mark the server refuses rejects with its code; the room’s next mark still goes', async ({ t }) => {
    const [a, b] = await Promise.all([t.client('read-c'), t.client('read-d')]);
    const room = await a.rooms.open.mutate({ otherUserId: 'read-d' });
    await b.messages.send.mutate({ roomId: room.id, content: 'one' });
    const refused = await a.reads.mark(room.id, 5).catch((e: unknown) => e);
    expect(parleyCodeOf(refused)).toBe('INVALID_INPUT');
    expect(parleyErrorOf(refused)).toEqual({ code: 'INVALID_INPUT', message: expect.stringContaining('seq 5'), details: { fields: { seq: [expect.any(String)] } } });
    await b.messages.send.mutate({ roomId: room.id, content: 'two' });
    await expect(a.reads.mark(room.id, 2)).resolves.toBeUndefined();
  });
});

describe('errors', () => {
  it('are the app’s own TRPCClientError (tRPC is a peer dependency) and carry their Parley code', async ({ t }) => {
    const [a, b] = await Promise.all([t.client('err-a'), t.client('err-b')]);
    const room = await a.rooms.open.mutate({ otherUserId: 'err-b' });
    const m = await a.messages.send.mutate({ roomId: room.id, content: 'mine' });
    const err = await b.messages.edit.mutate({ roomId: room.id, messageId: m.id, content: 'not yours' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppTRPCClientError);
    expect(TRPCClientError).toBe(AppTRPCClientError);
    expect(parleyCodeOf(err)).toBe('FORBIDDEN');
    expect(parleyCodeOf(new Error('x'))).toBeUndefined();
    expect(parleyErrorOf(err)).toEqual({ code: 'FORBIDDEN', message: expect.any(String), details: {} });
    expect(parleyErrorOf(new Error('x'))).toBeUndefined();
  });
});
