import { afterAll, expect, it, vi } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { engineCases } from './support/engine-cases.ts';
import { instanceFleet } from './support/instance-process.ts';
import { parsePrometheusText, valueOf } from './support/prometheus-text.ts';
import { range, record } from './support/subscription.ts';
import { TEST_SECRET } from './support/test-app.ts';

const FREEZE_MS = 30_000;
/**
 * Sends per second through A. PostgreSQL's NOTIFY queue only grows once the frozen listener's
 * socket buffers are full, which takes FILL_RATE sends a second of FILLER-long messages for a few
 * seconds; once it grows, and on the other engines (which queue from the first message), steady
 * traffic at RATE shows as well that sends go on, for a fifth of the machine's work.
 */
const RATE = 10;
const FILL_RATE = 200;
const SENDERS = 4;
/**
 * While B is frozen its LISTEN backend goes on writing notifications to B's socket until the
 * kernel's buffers (several MB) are full, and only then holds the queue's tail. Messages near
 * the length limit fill them in seconds rather than minutes.
 */
const FILLER = 'x'.repeat(3_800);

const engines = engineCases();
const fleet = instanceFleet();
afterAll(() => fleet.dispose());

const token = (userId: string) => signToken({ secret: TEST_SECRET, userId });

async function notifyQueueUsage(metricsUrl: string) {
  const res = await fetch(metricsUrl);
  return valueOf(parsePrometheusText(await res.text()).samples, 'parley_pg_notification_queue_usage');
}

// Both engines at once: each case is mostly a 30 s wait.
it.concurrent.for(engines)(
  'an instance frozen (SIGSTOP) for 30 s under load, $engine engine: every send through the other succeeds meanwhile, and once resumed its subscriber catches up without gap or duplicate',
  // The freeze alone is half the default minute; a machine busy with other work stretches the rest.
  { timeout: 150_000 },
  async ({ engine, env, skip }, ctx) => {
    if (skip) return ctx.skip();
    const db = await fleet.database(`freeze_${engine}`);
    // No sweep: what the frozen instance missed must come from the engine's own queue.
    // B is frozen with a signal, so it runs as a process; A, never signalled, runs in this one.
    const a = await fleet.startInProcess({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '3600000', ...env() });
    const b = await fleet.start({ DATABASE_URL: db.url, FANOUT_SWEEP_MS: '3600000', ...env() });
    const carol = createChatClient({ url: b.url, token: await token('carol') });
    const room = await carol.rooms.open.mutate({ otherUserId: 'dave' });
    const sub = record(carol, room.id, '0');
    await sub.started;
    const daveToken = await token('dave');
    const outcomes: number[] = [];
    let frozen = false;
    // Up to the freeze, at FILL_RATE: the subscriber's first 50 come in a moment.
    let rate = FILL_RATE;
    let stop = false;
    const send = async () => {
      while (!stop) {
        // Senders keep to the rate between them, as steady traffic would.
        const paced = new Promise((r) => setTimeout(r, (1000 * SENDERS) / rate));
        const res = await fetch(`${a.url}/${room.id}/messages/`, {
          method: 'POST',
          headers: { authorization: `Bearer ${daveToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ content: `f${outcomes.length}${frozen ? ` frozen${rate === FILL_RATE ? ` ${FILLER}` : ''}` : ''}`, chat_room: room.id, sender: 'dave' }),
        });
        outcomes.push(res.status);
        await paced;
      }
    };
    const senders = Promise.all(range(1, SENDERS).map(send));
    await sub.waitForMessages(50);
    b.child.kill('SIGSTOP');
    frozen = true;
    rate = engine === 'postgres' ? FILL_RATE : RATE;
    const atFreeze = outcomes.length;
    const thawAt = Date.now() + FREEZE_MS;
    // The frozen listener holds the NOTIFY queue's tail: the queue grows while sends go on.
    if (engine === 'postgres') await vi.waitFor(async () => expect(await notifyQueueUsage(a.metricsUrl)).toBeGreaterThan(0), { timeout: FREEZE_MS / 2, interval: 500 });
    rate = RATE;
    // The freeze lasts its full length whatever happens meanwhile: sends must go on throughout.
    await new Promise((r) => setTimeout(r, thawAt - Date.now()));
    const duringFreeze = outcomes.length - atFreeze;
    b.child.kill('SIGCONT');
    stop = true;
    await senders;
    // Sends went on while B was frozen: a send path held by it would let through at most the one
    // in flight per sender. How many a busy machine manages is the bench's business, not this
    // test's (one loaded run managed 418 of the 6,000 paced).
    expect(duringFreeze).toBeGreaterThan(SENDERS * 10);
    expect(outcomes.every((status) => status === 201)).toBe(true);
    await sub.waitForMessages(outcomes.length, 30_000);
    expect(sub.seqs()).toEqual(range(1, outcomes.length));
    await carol.close();
  },
);
