/**
 * `docs/performance.md`, made from the committed per-section results (`bench/results/<section>.json`).
 * A full run of `npm run bench` (or a full run of some sections, `--only=...`) rewrites it;
 * `node bench/performance-page.ts` rebuilds it from the files as they are.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RESULTS_DIR, type Row, type Target } from './report.ts';

export const PAGE = fileURLToPath(new URL('../docs/performance.md', import.meta.url));

/** What a section's file holds: its rows, the run's machine facts and how long it took. */
export interface SectionResult {
  section: string;
  facts: Record<string, unknown>;
  wallMs: number;
  rows: Row[];
  targets: Target[];
  problems: string[];
  failures: string[];
}

const METHOD = `\`npm run bench\` runs the server in its own child process on a fresh database, drives it from
separate load-generator processes, and measures baselines in the same run on the same database:
raw \`pg\` issuing the send's own SQL over the same number of connections (and a plain single-row
\`INSERT\`), and a raw \`ws\` relay with no database. Every figure is printed with its ratio to its
baseline, because absolute numbers drift on a shared machine: compare ratios, and compare runs
only side by side. Rate limits are turned off for every load (\`SEND_RATE_PER_SEC=0\` and the
others), since they exist to stop exactly this kind of traffic.

Live delivery is measured from clients in one generator process on the same two cores as the
server. The official \`@trpc/client\` costs that process about twice the CPU per message of a plain
\`ws\` client, which shows up as latency; the \`trpc-wire\` rows speak tRPC's protocol from a plain
\`ws\` client, like the ws/chat rows, so the two surfaces of the server are compared with equally
lean clients. Both tRPC figures are printed.

Sends are driven the same way: REST and the \`trpc-http-wire\` rows write their requests with
\`node:http\` over one kept-alive connection per virtual user; the \`trpc-http\` rows use the official
client's HTTP link, whose \`fetch\` costs the generator more than the request costs the server, so the
send targets count the plain clients and print the official link's figure beside them.

Send ratios, and the read-replica row's (requests per second with one replica over none): higher is
better. Delivery, connection and the history stream's ratios: lower is better.`;

const REPRODUCE = `\`\`\`sh
npm run bench                          # every section, about 13 minutes; rewrites this page
npm run bench -- --only=live,http      # some sections; rewrites theirs on this page
npm run bench -- --quick               # CI's smoke run (about 90 s): must finish and lose nothing
npm run bench -- --only=live --profile # CPU profile of the server; then node bench/profile-summary.ts
npm run bench -- --only=live --baseline=<git ref>  # also this build against <ref>'s, rounds alternated
node bench/live-ab.ts --help           # builds against each other, rounds alternated, per-message costs
\`\`\`

The database is \`BENCH_ADMIN_DATABASE_URL\`, else PostgreSQL on 127.0.0.1:5432, else a throwaway
server from npm. Quick, profiled and \`--surface=\` runs write under \`bench/results/partial/\`
(not committed) and leave this page alone.`;

const esc = (s: string) => s.replaceAll('|', '\\|');

function machine(facts: Record<string, unknown>): string {
  const pgVersion = String(facts.postgres ?? 'unknown').split(' on ')[0];
  return `${facts.cores} cores, Node ${facts.node}, ${pgVersion}, ${facts.date}, commit ${facts.commit}`;
}

export function renderPage(sections: SectionResult[]): string {
  const lines = ['# Performance', '', 'This page is written by `npm run bench` from `bench/results/*.json`; do not edit it by hand.', '', '## Method', '', METHOD, '', '## How to reproduce', '', REPRODUCE, ''];
  if (existsSync(join(RESULTS_DIR, 'latency.svg'))) {
    lines.push('## Live delivery latency', '', '![Live delivery latency by surface and rate](../bench/results/latency.svg)', '');
  }
  lines.push('## Results', '');
  for (const s of sections) {
    lines.push(`### ${s.section}`, '', `Run: ${machine(s.facts)}; ${(s.wallMs / 1000).toFixed(0)} s.`, '');
    lines.push('| Scenario | Surface | Parameters | Result | Baseline | Ratio |', '|---|---|---|---|---|---|');
    for (const r of s.rows) lines.push(`| ${r.scenario} | ${r.surface} | ${esc(r.params)} | ${esc(r.result)} | ${esc(r.baseline)} | ${Number.isFinite(r.ratio) && r.ratio !== null ? `${r.ratio.toFixed(2)}×` : '—'} |`);
    lines.push('');
    if (s.targets.length) {
      lines.push('| Target | Measured | Met |', '|---|---|---|');
      for (const t of s.targets) lines.push(`| ${esc(t.target)} | ${esc(t.measured)} | ${t.met === null ? 'n/a' : t.met ? 'yes' : '**no**'} |`);
      lines.push('');
    }
    for (const p of [...s.problems, ...s.failures]) lines.push(`- ${esc(p.split('\n')[0]!)}`);
    if (s.problems.length || s.failures.length) lines.push('');
  }
  return lines.join('\n');
}

/** The section files in the order the bench runs its sections. */
export function readSections(order: readonly string[]): SectionResult[] {
  const files = existsSync(RESULTS_DIR) ? readdirSync(RESULTS_DIR).filter((f) => f.endsWith('.json')) : [];
  const sections = files.map((f) => JSON.parse(readFileSync(join(RESULTS_DIR, f), 'utf8')) as SectionResult).filter((s) => typeof s.section === 'string');
  const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
  return sections.sort((a, b) => rank(a.section) - rank(b.section) || a.section.localeCompare(b.section));
}

export function writePage(order: readonly string[]) {
  writeFileSync(PAGE, renderPage(readSections(order)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { SECTION_ORDER } = await import('./sections.ts');
  writePage(SECTION_ORDER);
  console.log(`wrote ${PAGE}`);
}
