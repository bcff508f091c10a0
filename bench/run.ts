/**
 * `npm run bench [-- --quick] [-- --profile] [-- --only=send,live,connections,history,http,cross,engines,notify,inbox,inbox-features,push,safety,files,idle,storm,abuse]`
 *
 * Fresh database, the Parley server and the raw-ws relay each in their own process, load
 * generators in further processes; prints a Markdown table and writes bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { latencyChart } from './chart.ts';
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { createBenchDb } from './db.ts';
import { killChildren, nextMessage, spawnNode, BENCH_DIR } from './proc.ts';
import { printSummary, newestProfile } from './profile-summary.ts';
import { markdown, RESULTS_DIR, writeResults, type BenchContext, type Row } from './report.ts';
import { runAbuse } from './scenarios/abuse.ts';
import { runConnections } from './scenarios/connections.ts';
import { runCrossInstance } from './scenarios/cross-instance.ts';
import { runEngines } from './scenarios/engines.ts';
import { runFeaturesSendCost } from './scenarios/features-send-cost.ts';
import { runHistory } from './scenarios/history.ts';
import { runHistoryReplicas } from './scenarios/history-replicas.ts';
import { runHttpAutocannon } from './scenarios/http-autocannon.ts';
import { runInbox } from './scenarios/inbox.ts';
import { runLiveDelivery, type DeliveryRun } from './scenarios/live-delivery.ts';
import { runNotifyCost } from './scenarios/notify-cost.ts';
import { runSendThroughput } from './scenarios/send-throughput.ts';
import { runSafety } from './scenarios/safety.ts';
import { runPush } from './scenarios/push.ts';
import { runFiles } from './scenarios/files.ts';
import { runIdleSockets } from './scenarios/idle-sockets.ts';
import { evaluateTargets } from './targets.ts';
import { writePage } from './performance-page.ts';
import { SECTION_ORDER } from './sections.ts';
import { PER_USER_CAPS_OFF } from './load-env.ts';
import { PROBE_ARG, serverWindow } from './server-window.ts';
import { runLiveBaseline } from './scenarios/live-baseline.ts';
import { runReconnectStorm } from './scenarios/reconnect-storm.ts';

const args = process.argv.slice(2);
if (args.includes('--help')) {
  console.log(`npm run bench [-- --quick] [-- --profile] [-- --only=<sections>] [-- --surface=<surfaces>] [-- --baseline=<git ref>]

sections: ${SECTION_ORDER.join(', ')}, abuse
  push    sends with push and webhooks on vs off; the push queue's drain rate; commit to push request
  safety  sends with 1,000 block pairs vs none; with a 1 ms moderation hook vs none
  files   sends with attachments vs text-only; upload CPU per MiB; 1 MiB download MiB/s; RSS under 25 MiB downloads
  idle    50,000 idle sockets (--quick: 5,000), half tRPC, half ws/chat: RSS per socket, idle CPU, delivery meanwhile
  storm   10,000 subscribers (--quick: 1,000) lose their instance and resume on a new one: time to caught up, gaps, RSS, connections

--baseline=<ref>  the live section also runs this checkout's server against one built from <ref>
                  (a temporary worktree), in alternating rounds at 2,000 msg/s`);
  process.exit(0);
}
const quick = args.includes('--quick');
const profile = args.includes('--profile');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const baseline = args.find((a) => a.startsWith('--baseline='))?.slice(11);
const wanted = (name: string) => !only || only.some((o) => name.startsWith(o));
const POOL_MAX = 10;
const started = performance.now();

// BENCH_ADMIN_DATABASE_URL, else PostgreSQL on 127.0.0.1:5432, else a throwaway server from npm.
const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 200 });
if (postgres.source === 'throwaway') console.error(`bench: no PostgreSQL on 127.0.0.1:5432, started one on ${new URL(postgres.adminUrl).host}`);
const db = await createBenchDb(postgres.adminUrl).catch(async (err: unknown) => {
  await postgres.stop();
  throw err;
});
let dropped = false;
const cleanup = async () => {
  killChildren();
  if (!dropped) {
    dropped = true;
    await db.drop().catch((err: unknown) => console.error(`could not drop ${db.name}:`, err));
    await postgres.stop();
  }
};
process.once('SIGINT', () => void cleanup().finally(() => process.exit(130)));
process.once('SIGTERM', () => void cleanup().finally(() => process.exit(143)));
/**
 * A quick run starts no section after this long: on a busy machine the rest are skipped with a
 * note rather than failing the run (CI runs it for what it proves, not for its figures).
 */
const QUICK_BUDGET_MS = 240_000;
// A bound on the whole run, so a wedged scenario cannot hold CI.
const watchdog = setTimeout(() => {
  console.error('bench: overall time limit reached');
  void cleanup().finally(() => process.exit(2));
}, quick ? 900_000 : 1_500_000);
watchdog.unref();

let exitCode = 0;
try {
  exitCode = await main();
} catch (err) {
  console.error('bench failed:', err);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);

async function main(): Promise<number> {
  const secret = randomBytes(32).toString('base64url');
  const server = spawnNode(join(BENCH_DIR, 'server-process.ts'), {
    // The same V8 flag as `npm start`: a young generation capped at 8 MiB keeps a fast history
    // stream's short-lived garbage from growing RSS by ~100 MiB before it is scavenged.
    nodeArgs: ['--expose-gc', '--max-semi-space-size=8', PROBE_ARG, ...(profile ? ['--cpu-prof', `--cpu-prof-dir=${RESULTS_DIR}`] : [])],
    // Every load generator connects from loopback: no per-address connection cap. Push (on by
    // default in development) is off: the push section's jobs are then claimed by its own instance alone.
    env: { ...PER_USER_CAPS_OFF, MAX_CONNECTIONS_PER_IP: '0', PORT: '0', METRICS_PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', DATABASE_URL: db.url, DB_POOL_MAX: String(POOL_MAX), JWT_SECRET: secret, PUSH: 'off', SEND_RATE_PER_SEC: '0', TYPING_RATE_PER_SEC: '0', ROOM_OPEN_RATE_PER_SEC: '0', ROOMS_OPEN_PER_DAY: '0', MARK_READ_RATE_PER_SEC: '0', MARK_DELIVERED_RATE_PER_SEC: '0', EDIT_RATE_PER_SEC: '0', DELETE_RATE_PER_SEC: '0', UPLOAD_RATE_PER_SEC: '0', DATA_DIR: join(tmpdir(), `parley-bench-${process.pid}`) },
  });
  const relay = spawnNode(join(BENCH_DIR, 'baselines', 'ws-relay.ts'), { nodeArgs: ['--expose-gc'] });
  const [srv, rel] = await Promise.all([
    nextMessage<{ url: string; metricsUrl: string; pid: number }>(server, (m) => m.type === 'ready', 60_000, 'server'),
    nextMessage<{ url: string; pid: number }>(relay, (m) => m.type === 'ready', 30_000, 'relay'),
  ]);
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  const gcOf = (child: typeof server) => async () => {
    const reply = nextMessage<{ listeners: number }>(child, (m) => m.type === 'gc-done', 30_000, 'gc');
    child.send({ type: 'gc' });
    return (await reply).listeners;
  };
  const gcServer = gcOf(server);
  const gcRelay = gcOf(relay);
  const ctx: BenchContext = {
    quick, baseUrl: srv.url, metricsUrl: srv.metricsUrl, secret, dbUrl: db.url, pool, poolMax: POOL_MAX,
    serverPid: srv.pid, relayUrl: rel.url, relayPid: rel.pid,
    serverWindow: () => serverWindow(server, srv.metricsUrl),
    gc: (target) => (target === 'server' ? gcServer() : gcRelay()),
    problems: [], failures: [],
    surfaces: args.find((a) => a.startsWith('--surface='))?.slice(10).split(','),
  };

  const rows: Row[] = [];
  let delivery: DeliveryRun[] = [];
  const timings: Record<string, number> = {};
  // Idle connections run first: the server's RSS baseline is then not inflated by earlier load.
  const scenarios: Array<[string, () => Promise<void>]> = [
    ['connections', async () => void rows.push(...(await runConnections(ctx)))],
    ['send', async () => void rows.push(...(await runSendThroughput(ctx)))],
    ['live', async () => {
      const r = await runLiveDelivery(ctx);
      rows.push(...r.rows);
      delivery = r.results;
      if (baseline) rows.push(...(await runLiveBaseline(ctx, postgres.adminUrl, baseline)));
    }],
    ['history', async () => {
      rows.push(...(await runHistory(ctx)));
      rows.push(...(await runHistoryReplicas(ctx)));
    }],
    ['http', async () => void rows.push(...(await runHttpAutocannon(ctx)))],
    ['cross', async () => void rows.push(...(await runCrossInstance(ctx)))],
    // Minutes of ramps over every engine: CI's quick run leaves it out unless asked for by name.
    ['engines', async () => void (quick && !only ? undefined : rows.push(...(await runEngines(ctx))))],
    ['notify', async () => void rows.push(...(await runNotifyCost(ctx)))],
    ['inbox', async () => void rows.push(...(await runInbox(ctx)))],
    // Named so that `--only=inbox` still runs it, and `--only=inbox-features` runs it alone.
    ['inbox-features', async () => void rows.push(...(await runFeaturesSendCost(ctx)))],
    ['push', async () => void rows.push(...(await runPush(ctx)))],
    ['safety', async () => void rows.push(...(await runSafety(ctx)))],
    ['files', async () => void rows.push(...(await runFiles(ctx)))],
    // On a server process of its own, like abuse: 50,000 sockets weigh on no other scenario.
    ['idle', async () => void rows.push(...(await runIdleSockets(ctx)))],
    // Minutes of connecting and reconnecting thousands of sockets: CI's quick run leaves it out unless named.
    ['storm', async () => void (quick && !only ? undefined : rows.push(...(await runReconnectStorm(ctx))))],
    // Last, on an instance of its own: whatever it leaves behind weighs on no other scenario.
    ['abuse', async () => void rows.push(...(await runAbuse(ctx)))],
  ];
  const sectionRows = new Map<string, { rows: Row[]; wallMs: number; failures: string[] }>();
  for (const [name, run] of scenarios) {
    if (!wanted(name)) continue;
    if (quick && performance.now() - started > QUICK_BUDGET_MS) {
      ctx.problems.push(`${name}: not run, the quick run's ${QUICK_BUDGET_MS / 1000} s were spent (a busy machine)`);
      continue;
    }
    const t0 = performance.now();
    const rowsBefore = rows.length;
    const failuresBefore = ctx.failures.length;
    console.error(`bench: ${name}…`);
    try {
      await run();
    } catch (err) {
      ctx.failures.push(`${name} scenario failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    }
    timings[name] = Math.round(performance.now() - t0);
    sectionRows.set(name, { rows: rows.slice(rowsBefore), wallMs: timings[name], failures: ctx.failures.slice(failuresBefore) });
    console.error(`bench: ${name} done in ${(timings[name] / 1000).toFixed(1)} s`);
  }
  await pool.end();

  const stopped = new Promise((resolve) => server.once('exit', resolve));
  server.send({ type: 'stop' });
  await Promise.race([stopped, new Promise((r) => setTimeout(r, 15_000))]);

  const facts = {
    date: new Date().toISOString(), mode: quick ? 'quick' : 'full', cores: availableParallelism(), node: process.version,
    postgres: await db.postgresVersion(), ...gitFacts(), platform: `${process.platform} ${process.arch}`, dbPoolMax: POOL_MAX,
  };
  const targets = evaluateTargets(rows, delivery);
  const md = markdown(rows, targets, facts);
  const svg = delivery.length ? await latencyChart(delivery, `Live delivery latency, 100 pairs (${facts.mode} run, ${facts.cores} cores)`) : undefined;
  const wallMs = Math.round(performance.now() - started);
  const full = !quick && !args.some((a) => a.startsWith('--surface=') || a === '--profile');
  // A section's file stands alone on the performance page: its rows, its targets, its run's facts.
  const sections = [...sectionRows].map(([section, s]) => ({
    section, facts, wallMs: s.wallMs, rows: s.rows,
    targets: evaluateTargets(s.rows, section === 'live' ? delivery : []).filter((t) => t.met !== null),
    problems: [], failures: s.failures, ...(section === 'live' ? { delivery } : {}),
  }));
  writeResults({ facts, wallMs, timings, rows, delivery, targets, problems: ctx.problems, failures: ctx.failures }, md, svg, full, sections);
  if (full) writePage(SECTION_ORDER);
  console.log(md);
  if (profile) {
    const file = newestProfile();
    if (file) printSummary(file, 20);
  }
  for (const p of ctx.problems) console.error(`note: ${p}`);
  for (const f of ctx.failures) console.error(`FAILURE: ${f}`);
  console.error(`bench: ${facts.mode} run finished in ${(wallMs / 1000).toFixed(1)} s${ctx.failures.length ? ` with ${ctx.failures.length} failure(s)` : ''}`);
  return ctx.failures.length ? 1 : 0;
}

/** The server is loaded from the work tree: record which commit, and whether server code had local edits. */
function gitFacts() {
  const git = (...a: string[]) => {
    try {
      return execFileSync('git', a, { cwd: join(BENCH_DIR, '..'), encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  };
  return { commit: git('rev-parse', '--short', 'HEAD'), uncommittedServerChanges: git('status', '--porcelain', 'server', 'contracts').split('\n').filter(Boolean) };
}

