/**
 * Live delivery alone, one build against others in alternating rounds (see build-ab.ts).
 */
import { scratchPostgres } from '../server/infra/db/scratch-postgres.ts';
import { killChildren } from './proc.ts';
import { prepareTree, thisCommit } from './baseline-tree.ts';
import { formatRun, formatSummary, runBuilds, summarizeRuns, type Build } from './build-ab.ts';

const HELP = `node bench/live-ab.ts [--baseline=<ref>[,<ref>...]] [--tree=<checkout>] [--also-env="KEY:value;..."]
    [--rates=500,2000] [--variants=trpc,legacy-ws,trpc/legacy-ws] [--rounds=1] [--ms=3000] [--pairs=100]
    [--env="KEY:value;..."] [--profile] [--heap-profile]

Live delivery against one server per build, every server up at once, each build taking its turn
in every round (the order turning each round); prints each run, then per rate and variant each
build's p99 over the rounds with the server's send-statement p99, event-loop delay p99 and GC total.

  --baseline   git refs to compare with: each is checked out in a temporary worktree (kept under
               the temporary directory and reused) whose dependencies are this checkout's when
               they match, else installed there with npm ci
  --tree       the first build's server comes from this checkout instead of this one
  --also-env   one more build: the first build's server with these variables
  --env        variables for every build's server (FANOUT:local, PUSH:off, ...)
  --variants   receivers' surface, or receivers/senders (trpc/legacy-ws: tRPC subscribers, ws/chat senders)
  --profile    each server writes a CPU profile to bench/results/partial/ (node bench/profile-summary.ts <file>)
  --heap-profile  each measured run writes the server's allocations by site there (garbage included;
               node bench/profile-summary.ts --heap <file>)`;

const argv = process.argv.slice(2);
if (argv.includes('--help')) {
  console.log(HELP);
  process.exit(0);
}
// Split at the first '=' only: an --env value may hold one (`--import=x`).
const args = Object.fromEntries(argv.map((a) => /^--([^=]+)(?:=(.*))?$/s.exec(a)!.slice(1)));
const envOf = (spec: string | undefined): Record<string, string> =>
  spec ? Object.fromEntries(spec.split(';').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf(':')), kv.slice(kv.indexOf(':') + 1)])) : {};
const common = envOf(args.env);

const builds: Build[] = [{ label: args.tree ? 'tree' : thisCommit(), ...(args.tree && { dir: args.tree }), env: common }];
if (args['also-env']) builds.push({ label: `${builds[0]!.label}+env`, ...(args.tree && { dir: args.tree }), env: { ...common, ...envOf(args['also-env']) } });
for (const ref of (args.baseline ?? '').split(',').filter(Boolean)) {
  const tree = prepareTree(ref);
  builds.push({ label: tree.commit, dir: tree.dir, env: common });
}

const postgres = await scratchPostgres(process.env.BENCH_ADMIN_DATABASE_URL, { max_connections: 300 });
try {
  if (args['also-env']) console.log(`${builds[1]!.label}: ${args['also-env']}`);
  if (args.env) console.log(`every server with ${args.env}`);
  const runs = await runBuilds({
    adminUrl: postgres.adminUrl,
    builds,
    rates: (args.rates ?? '500,2000').split(',').map(Number),
    variants: (args.variants ?? 'trpc,legacy-ws').split(','),
    rounds: Number(args.rounds ?? args.reps ?? 1),
    ms: Number(args.ms ?? 3000),
    pairs: Number(args.pairs ?? 100),
    profile: 'profile' in args,
    heapProfile: 'heap-profile' in args,
    onRun: (r) => console.log(formatRun(r)),
    onFailure: (what) => console.log(`failed: ${what}`),
  });
  console.log('');
  for (const s of summarizeRuns(runs, builds.map((b) => b.label))) console.log(formatSummary(s).join('\n'));
} finally {
  killChildren();
  await postgres.stop();
}
