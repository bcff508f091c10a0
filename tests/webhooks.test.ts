import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { prepared } from '../server/infra/db/prepared.ts';
import { jobPassSql } from '../server/push/message-jobs.ts';
import { webhookJobsFromStored } from '../server/webhooks/webhooks.service.ts';
import { send, uploaded } from './support/attachments.ts';
import { startTestApp, type TestApp } from './support/test-app.ts';

const SECRET = 'webhook-secret-0123456789';

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  event: { id: string; type: string; created_at: string; data: Record<string, { id: string; content?: string }> };
}

const deliveries: Delivery[] = [];
/** Every request's event id and type, answered or not. */
const attempts: Array<{ id: string; type: string; at: number }> = [];
/** Status codes to answer with, in order; 204 once they run out. 'hang' never answers. */
const answers: Array<number | 'hang'> = [];
/** Contents of message events answered 500 the first time they come. */
const refuseOnce = new Set<string>();
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const { id, type, data } = JSON.parse(body) as { id: string; type: string; data: { message?: { content: string } } };
    const refused = data.message !== undefined && refuseOnce.delete(data.message.content);
    const answer = refused ? 500 : (answers.shift() ?? 204);
    attempts.push({ id, type, at: Date.now() });
    if (answer === 'hang') return;
    if (answer < 300) deliveries.push({ headers: req.headers, body, event: JSON.parse(body) as Delivery['event'] });
    res.writeHead(answer).end();
  });
});

let t: TestApp;
beforeAll(async () => {
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  // A hung delivery gives up after a second here, not the default ten.
  t = await startTestApp(import.meta.filename, { WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, WEBHOOK_SECRET: SECRET, WEBHOOK_TIMEOUT_MS: '1000' });
});
afterAll(async () => {
  await t?.close();
  receiver.closeAllConnections();
  receiver.close();
});

/** What a receiver does: recompute the signature over `<timestamp>.<body>` and compare. */
function verified({ headers, body }: Delivery) {
  const expected = `v1=${createHmac('sha256', SECRET).update(`${headers['parley-webhook-timestamp']}.${body}`).digest('hex')}`;
  return headers['parley-signature'] === expected && Math.abs(Date.now() / 1000 - Number(headers['parley-webhook-timestamp'])) < 300;
}

it('one signed POST per event: room.created, message.created, message.updated, message.deleted', async () => {
  const a = await t.client('hook-a');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-b' });
  const m = await a.messages.send.mutate({ roomId: room.id, content: 'hello hook' });
  // message.created is made from the stored row once committed: an edit made before that would
  // already show in it (see docs/api.md), so this one waits for it.
  await vi.waitFor(() => expect(deliveries.map((d) => d.event.type)).toContain('message.created'), { timeout: 8_000 });
  await a.messages.edit.mutate({ roomId: room.id, messageId: m.id, content: 'edited hook' });
  await a.messages.delete.mutate({ roomId: room.id, messageId: m.id });
  await a.rooms.open.mutate({ otherUserId: 'hook-b' });
  await vi.waitFor(() => expect(deliveries).toHaveLength(4), { timeout: 8_000 });
  const byType = Object.fromEntries(deliveries.map((d) => [d.event.type, d]));
  expect(Object.keys(byType).sort()).toEqual(['message.created', 'message.deleted', 'message.updated', 'room.created']);
  expect(byType['room.created']!.event.data.room).toMatchObject({ id: room.id });
  expect(byType['message.created']!.event.data.message).toMatchObject({ id: m.id, content: 'hello hook' });
  expect(byType['message.updated']!.event.data.message).toMatchObject({ id: m.id, content: 'edited hook' });
  expect(byType['message.deleted']!.event.data.message).toMatchObject({ id: m.id, content: '' });
  for (const d of deliveries) {
    expect(verified(d)).toBe(true);
    expect(d.headers['parley-webhook-id']).toBe(d.event.id);
    expect(d.headers['content-type']).toBe('application/json');
  }
  expect(new Set(deliveries.map((d) => d.event.id)).size).toBe(4);
  // A receiver that checks signatures refuses a body someone changed.
  expect(verified({ ...deliveries[0]!, body: deliveries[0]!.body.replace('hook', 'hack') })).toBe(false);
});

it('a failed delivery is retried with the same event id; a receiver that hangs slows no send', async () => {
  deliveries.length = 0;
  answers.push(500, 'hang');
  const a = await t.client('hook-c');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-d' });
  await vi.waitFor(() => expect(answers).toHaveLength(0), { timeout: 8_000 });
  const durations: number[] = [];
  for (let i = 0; i < 10; i++) {
    const started = performance.now();
    await a.messages.send.mutate({ roomId: room.id, content: `while hung ${i}` });
    durations.push(performance.now() - started);
  }
  expect(Math.max(...durations)).toBeLessThan(500);
  await vi.waitFor(() => expect(deliveries.filter((d) => d.event.type === 'message.created')).toHaveLength(10), { timeout: 15_000 });
  // room.created was refused (500) once, then its retry hung, then it went through, with its first id.
  await vi.waitFor(() => expect(deliveries.filter((d) => d.event.type === 'room.created')).toHaveLength(1), { timeout: 30_000 });
  const tries = attempts.filter((x) => x.type === 'room.created').slice(-3);
  expect(tries).toHaveLength(3);
  expect(new Set(tries.map((x) => x.id))).toEqual(new Set([deliveries.find((d) => d.event.type === 'room.created')!.event.id]));
  // The hung try was given up after WEBHOOK_TIMEOUT_MS (1 s here), then retried after its backoff
  // (2 s): well before the default timeout alone (10 s) would have let it go.
  expect(tries[2]!.at - tries[1]!.at).toBeLessThan(8_000);
  const jobs = await t.sql<{ n: number }>('select count(*)::int as n from jobs');
  expect(jobs[0]!.n).toBe(0);
});

it('a message of attachments alone is announced like any other: message.created carries its files', async () => {
  deliveries.length = 0;
  const token = await t.token('hook-files');
  const a = await t.client('hook-files');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-files-b' });
  const attachmentId = await uploaded(t, token, room.id, Buffer.from('a note'), 'text/plain', 'note.txt');
  const sent = (await send(t, token, { roomId: room.id, attachmentIds: [attachmentId] })).result!.data;
  await vi.waitFor(() => expect(deliveries.map((d) => d.event.type)).toContain('message.created'), { timeout: 8_000 });
  const created = deliveries.find((d) => d.event.type === 'message.created')!;
  expect(created.event.data.message).toMatchObject({ id: sent.id, content: '' });
});

it('messages stored together whose events fail apart: only the failed one is sent again, with its id', async () => {
  deliveries.length = 0;
  const a = await t.client('hook-split');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-split-b' });
  refuseOnce.add('split refused');
  const contents = ['split refused', 'split 1', 'split 2', 'split 3'];
  await Promise.all(contents.map((content) => a.messages.send.mutate({ roomId: room.id, content })));
  const created = () => deliveries.filter((d) => d.event.type === 'message.created');
  await vi.waitFor(() => expect(created().map((d) => d.event.data.message!.content).sort()).toEqual([...contents].sort()), { timeout: 15_000 });
  const refused = created().find((d) => d.event.data.message!.content === 'split refused')!;
  expect(attempts.filter((x) => x.id === refused.event.id)).toHaveLength(2);
  for (const d of created().filter((d) => d !== refused)) expect(attempts.filter((x) => x.id === d.event.id)).toHaveLength(1);
  await vi.waitFor(async () => expect((await t.sql<{ n: number }>('select count(*)::int as n from jobs'))[0]!.n).toBe(0));
});

it('a job run again (as after a process died between a POST and storing its outcome) announces its messages with the same event ids', async () => {
  deliveries.length = 0;
  const a = await t.client('hook-g');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-h' });
  await vi.waitFor(() => expect(deliveries.filter((d) => d.event.type === 'room.created')).toHaveLength(1), { timeout: 8_000 });
  // The message's first POST hangs: meanwhile its job is in the table, claimed, as it was made.
  answers.push('hang');
  await a.messages.send.mutate({ roomId: room.id, content: 'announced twice' });
  let made: unknown;
  await vi.waitFor(async () => {
    const [job] = await t.sql<{ payload: unknown }>("select payload from jobs where kind = 'webhook' and locked_until is not null");
    expect(job).toBeDefined();
    made = job!.payload;
  }, { timeout: 8_000, interval: 20 });
  const announced = () => deliveries.filter((d) => d.event.type === 'message.created' && d.event.data.message!.content === 'announced twice');
  await vi.waitFor(() => expect(announced()).toHaveLength(1), { timeout: 15_000 });
  await t.sql("insert into jobs (kind, payload, run_at) values ('webhook', $1, now())", [JSON.stringify(made)]);
  await vi.waitFor(() => expect(announced()).toHaveLength(2), { timeout: 8_000 });
  const [first, again] = announced();
  expect(again!.event.id).toBe(first!.event.id);
  expect(again!.event.data.message!.id).toBe(first!.event.data.message!.id);
});

it('a pass that finds hundreds of one room’s messages (a cursor left behind) writes jobs of at most 100 messages each, covering every one', async () => {
  const a = await t.client('hook-i');
  const room = await a.rooms.open.mutate({ otherUserId: 'hook-j' });
  await t.sql("insert into messages (id, chat_room_id, sender_id, content, seq) select gen_random_uuid(), $1, 'hook-i', 'backlog ' || s, s from generate_series(1, 250) s", [room.id]);
  await t.sql('update chat_rooms set last_seq = 250 where id = $1', [room.id]);
  await t.sql('insert into message_job_cursors (chat_room_id, seq) values ($1, 0) on conflict (chat_room_id) do update set seq = 0', [room.id]);
  // The pass in a transaction of this test's own: the server's queue never sees its jobs.
  const c = new pg.Client({ connectionString: t.databaseUrl });
  await c.connect();
  try {
    await c.query('begin');
    const { rows: [before] } = await c.query<{ id: string }>('select coalesce(max(id), 0) as id from jobs');
    const list = JSON.stringify([room.id]);
    await c.query(prepared(jobPassSql(webhookJobsFromStored({ url: 'http://127.0.0.1:1/hook', secret: SECRET, timeoutMs: 1_000 }))).text, [list, list]);
    const { rows } = await c.query<{ payload: { ranges: Array<{ after: number; upTo: number }> } }>("select payload from jobs where kind = 'webhook' and id > $1 order by id", [before!.id]);
    const sizes = rows.map((r) => r.payload.ranges.reduce((n, x) => n + x.upTo - x.after, 0));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
    expect(sizes.reduce((x, y) => x + y, 0)).toBe(250);
    expect(rows.flatMap((r) => r.payload.ranges.map((x) => [x.after, x.upTo]))).toEqual([[0, 100], [100, 200], [200, 250]]);
  } finally {
    await c.query('rollback');
    await c.end();
  }
});
