import { createHmac } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect } from 'vitest';
import type { ModerationRequest, ModerationVerdict } from '../contracts/index.ts';
import { loadConfig } from '../server/infra/config/config.ts';
import { createBlocklist } from '../server/moderation/blocklist.ts';
import { openLegacySocket } from './support/legacy-socket.ts';
import { rejection } from './support/rejection.ts';
import { roomPairs } from './support/room-pair.ts';
import { appTest, startTestApp, TEST_SECRET, type TestApp } from './support/test-app.ts';

const SECRET = 'hook-secret-0123456789';

interface Seen {
  body: ModerationRequest;
  signatureValid: boolean;
  timestamp: number;
}

/**
 * A loopback moderation hook whose answer the content picks: `reject …`, `mask …` (rewrites
 * "darn" to "d**n"), `hang …` (never answers), `boom …` (HTTP 500); anything else is allowed.
 */
function startHook() {
  const seen: Seen[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const timestamp = String(req.headers['x-parley-timestamp']);
      const expected = `sha256=${createHmac('sha256', SECRET).update(`${timestamp}.${raw}`).digest('hex')}`;
      const body = JSON.parse(raw) as ModerationRequest;
      seen.push({ body, signatureValid: req.headers['x-parley-signature'] === expected, timestamp: Number(timestamp) });
      const answer = (verdict: ModerationVerdict) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(verdict));
      if (body.content.startsWith('reject')) answer({ verdict: 'reject', reason: 'No shouting about rejects here.' });
      else if (body.content.startsWith('mask')) answer({ verdict: 'rewrite', content: body.content.replaceAll('darn', 'd**n') });
      else if (body.content.startsWith('hang')) hanging.push(res);
      else if (body.content.startsWith('boom')) res.writeHead(500).end('broken');
      else answer({ verdict: 'allow' });
    });
  });
  const listening = new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/moderate`)));
  return {
    seen,
    listening,
    close: () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

const hook = startHook();
const hookUrl = await hook.listening;
afterAll(() => hook.close());
const blocklistFile = join(tmpdir(), `parley-blocklist-${process.pid}.txt`);
writeFileSync(blocklistFile, '# one word or phrase a line\nfrobnicate\nBad Phrase\n\n');

const it = appTest(import.meta.filename, {
  MODERATION_URL: hookUrl,
  MODERATION_SECRET: SECRET,
  MODERATION_TIMEOUT_MS: '1000',
  // Fewer calls than the flood below, so only the per-room share keeps a slot for other rooms.
  MODERATION_CONCURRENCY: '16',
  MODERATION_BLOCKLIST_FILE: blocklistFile,
});
let pairs: ReturnType<typeof roomPairs> | undefined;
const freshRoom = (t: TestApp) => (pairs ??= roomPairs(t, 'mod'))();

async function restSend(t: TestApp, userId: string, roomId: string, content: string) {
  const res = await fetch(`${t.url}/${roomId}/messages/`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await t.token(userId)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content, chat_room: roomId, sender: userId }),
  });
  return { status: res.status, body: await res.json() };
}

const stored = async (t: TestApp, roomId: string) => (await t.sql<{ content: string }>('select content from messages where chat_room_id = $1 order by seq', [roomId])).map((r) => r.content);

describe('the moderation hook', () => {
  it('is asked before a send is stored, with a signed request naming sender, room and content', async ({ t }) => {
    const { a, room, aId } = await freshRoom(t);
    const before = Math.floor(Date.now() / 1000);
    const message = await a.messages.send.mutate({ roomId: room.id, content: 'hello there' });
    expect(message.content).toBe('hello there');
    const call = hook.seen.find((s) => s.body.room === room.id)!;
    expect(call.body).toEqual({ action: 'send', sender: aId, room: room.id, content: 'hello there' });
    expect(call.signatureValid).toBe(true);
    expect(call.timestamp).toBeGreaterThanOrEqual(before - 1);
    expect(call.timestamp).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 1);
  });

  it('a rejection stores nothing and reaches the client as CONTENT_REJECTED with the hook’s reason on tRPC, REST and ws/chat', async ({ t }) => {
    const { a, room, aId, bId } = await freshRoom(t);
    const reason = 'No shouting about rejects here.';
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'reject this' }))).toEqual({ code: 'UNPROCESSABLE_CONTENT', parleyCode: 'CONTENT_REJECTED', message: reason });
    expect(await restSend(t, aId, room.id, 'reject over REST')).toEqual({ status: 422, body: { detail: reason } });
    const legacy = await openLegacySocket(t.url, aId, bId, await t.token(aId));
    legacy.send({ action: 'new_message', message: 'reject over ws', sender: aId, chat_room: room.id, other_user: bId });
    expect(await legacy.waitFor((f) => f.action === 'error')).toEqual({ action: 'error', code: 'CONTENT_REJECTED', detail: reason });
    expect(legacy.ws.readyState).toBe(legacy.ws.OPEN);
    legacy.close();
    expect(await stored(t, room.id)).toEqual([]);
  });

  it('a rewrite is what is stored and delivered', async ({ t }) => {
    const { a, room } = await freshRoom(t);
    const message = await a.messages.send.mutate({ roomId: room.id, content: 'mask: darn it' });
    expect(message.content).toBe('mask: d**n it');
    expect(await stored(t, room.id)).toEqual(['mask: d**n it']);
  });

  it('an edit is checked as a send is: rejected, or rewritten', async ({ t }) => {
    const { a, room, aId } = await freshRoom(t);
    const sent = await a.messages.send.mutate({ roomId: room.id, content: 'first' });
    expect(await rejection(a.messages.edit.mutate({ roomId: room.id, messageId: sent.id, content: 'reject edit' }))).toMatchObject({ parleyCode: 'CONTENT_REJECTED' });
    const edited = await a.messages.edit.mutate({ roomId: room.id, messageId: sent.id, content: 'mask darn' });
    expect(edited.content).toBe('mask d**n');
    expect(hook.seen.filter((s) => s.body.room === room.id && s.body.action === 'edit').map((s) => s.body)).toContainEqual({
      action: 'edit',
      sender: aId,
      room: room.id,
      message_id: sent.id,
      content: 'mask darn',
    });
  });

  it('fails open by default: a hook that times out or errs lets the content through', async ({ t }) => {
    const { a, room } = await freshRoom(t);
    const started = Date.now();
    expect((await a.messages.send.mutate({ roomId: room.id, content: 'hang on' })).content).toBe('hang on');
    expect(Date.now() - started).toBeGreaterThanOrEqual(990);
    expect((await a.messages.send.mutate({ roomId: room.id, content: 'boom' })).content).toBe('boom');
    expect(await stored(t, room.id)).toEqual(['hang on', 'boom']);
  });

  it('a hook that hangs for one room holds no other room’s send, even with that room flooding it', async ({ t }) => {
    const hung = await freshRoom(t);
    const other = await freshRoom(t);
    let hungDone = 0;
    const flood = Array.from({ length: 30 }, (_, i) => hung.a.messages.send.mutate({ roomId: hung.room.id, content: `hang ${i}` }).finally(() => hungDone++));
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const quick = await other.a.messages.send.mutate({ roomId: other.room.id, content: 'meanwhile' });
    const took = Date.now() - started;
    expect(quick.content).toBe('meanwhile');
    // The other room's send passed while the hung room's sends were still waiting on the hook.
    expect(hungDone).toBe(0);
    expect(took).toBeLessThan(700);
    await Promise.all(flood);
  });

  it('the word list rejects a listed word or phrase, whole words only and in any case, before the hook is asked', async ({ t }) => {
    const { a, room } = await freshRoom(t);
    const calls = hook.seen.length;
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'please FROBNICATE it' }))).toMatchObject({ parleyCode: 'CONTENT_REJECTED' });
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'a bad   phrase!' }))).toMatchObject({ parleyCode: 'CONTENT_REJECTED' });
    expect(hook.seen.length).toBe(calls);
    expect((await a.messages.send.mutate({ roomId: room.id, content: 'frobnicated is another word' })).content).toBe('frobnicated is another word');
  });
});

describe('failing closed and masking', () => {
  it('MODERATION_FAIL=closed refuses what the hook could not check; the word list masks with MODERATION_BLOCKLIST_ACTION=mask', async () => {
    await using t = await startTestApp(`${import.meta.filename}-closed`, {
      MODERATION_URL: hookUrl,
      MODERATION_SECRET: SECRET,
      MODERATION_TIMEOUT_MS: '150',
      MODERATION_FAIL: 'closed',
      MODERATION_BLOCKLIST_FILE: blocklistFile,
      MODERATION_BLOCKLIST_ACTION: 'mask',
    });
    const [a] = await Promise.all([t.client('closed-a')]);
    const room = await a.rooms.open.mutate({ otherUserId: 'closed-b' });
    const unchecked = 'This message could not be checked; try again later.';
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'hang on' }))).toEqual({ code: 'UNPROCESSABLE_CONTENT', parleyCode: 'CONTENT_REJECTED', message: unchecked });
    expect(await rejection(a.messages.send.mutate({ roomId: room.id, content: 'boom' }))).toMatchObject({ parleyCode: 'CONTENT_REJECTED', message: unchecked });
    const masked = await a.messages.send.mutate({ roomId: room.id, content: 'Frobnicate, then a Bad Phrase.' });
    expect(masked.content).toBe('**********, then a *** ******.');
    // The hook saw the masked text: it checks what would be stored.
    expect(hook.seen.at(-1)!.body.content).toBe('**********, then a *** ******.');
    expect(await stored(t, room.id)).toEqual(['**********, then a *** ******.']);
  });
});

describe('the word list and the configuration', () => {
  it('matches whole words in any script and case, and masks only the match', () => {
    const list = createBlocklist(['näh', 'foo bar', 'x.y'])!;
    expect(list.matches('NÄH!')).toBe(true);
    expect(list.matches('nähen')).toBe(false);
    expect(list.matches('foo\tbar')).toBe(true);
    expect(list.matches('xzy')).toBe(false);
    expect(list.mask('say foo bar, x.y')).toBe('say *** ***, ***');
    expect(createBlocklist(['', '  '])).toBeUndefined();
  });

  it('defaults, and a blocklist file that cannot be read stops the start', () => {
    const base = { NODE_ENV: 'test', JWT_SECRET: TEST_SECRET };
    expect(loadConfig(base).moderation).toEqual({ url: undefined, secret: undefined, timeoutMs: 300, fail: 'open', concurrency: 64, blocklist: [], blocklistAction: 'reject' });
    expect(() => loadConfig({ ...base, MODERATION_BLOCKLIST_FILE: '/nonexistent/words.txt' })).toThrow(/MODERATION_BLOCKLIST_FILE: cannot read/);
    expect(() => loadConfig({ ...base, MODERATION_FAIL: 'maybe' })).toThrow(/MODERATION_FAIL/);
    expect(loadConfig({ ...base, MODERATION_BLOCKLIST_FILE: blocklistFile }).moderation.blocklist).toEqual(['frobnicate', 'Bad Phrase']);
  });
});
