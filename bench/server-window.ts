/**
 * What the server reports about one timed run: its send statements' p50/p99 (from /metrics, absent
 * on a build without the histogram) and, from bench/server-probe.ts loaded into it, its event-loop
 * delay and GC pauses over the same window.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { nextMessage } from './proc.ts';
import type { ProbeWindow } from './server-probe.ts';
import { formatStatementTimes, statementWindow, type StatementTimes } from './statement-times.ts';

/** The node argument that loads the probe into a server process (of this checkout or another). */
export const PROBE_ARG = `--import=${fileURLToPath(new URL('./server-probe.ts', import.meta.url))}`;

export interface ServerWindow {
  statement?: StatementTimes;
  probe?: ProbeWindow;
}

/** Opens a window on `server` (spawned with {@link PROBE_ARG}); `end()` gives the figures since. */
export async function serverWindow(server: ChildProcess, metricsUrl: string | undefined, allocations?: string): Promise<{ end(): Promise<ServerWindow> }> {
  const statements = metricsUrl ? await statementWindow(metricsUrl).catch(() => undefined) : undefined;
  const started = nextMessage(server, (m) => m?.type === 'probe-started', 5_000, 'server probe');
  server.send({ type: 'probe-start', ...(allocations && { allocations }) });
  await started;
  return {
    async end() {
      const read = nextMessage<{ window: ProbeWindow }>(server, (m) => m?.type === 'probe', 30_000, 'server probe');
      server.send({ type: 'probe-read' });
      const probe = (await read).window;
      const statement = await statements?.end().catch(() => undefined);
      return { ...(statement?.p50 !== undefined && { statement }), probe };
    },
  };
}

/** "event loop p99 … ms; GC … ms in … pauses (max …)" for a row. */
export function formatProbe(p: ProbeWindow | undefined): string {
  if (!p) return '';
  const major = (p.gc.byKind.major ?? 0) + (p.gc.byKind.incremental ?? 0);
  return `event-loop delay p99 ${p.loop.p99.toFixed(1)} / max ${p.loop.max.toFixed(1)} ms; GC ${p.gc.totalMs.toFixed(0)} ms in ${p.gc.count} pauses (max ${p.gc.maxMs.toFixed(1)}, mark-compact ${major.toFixed(0)}); heap ${p.heapMiB.toFixed(0)} MiB`;
}

export function formatServerWindow(w: ServerWindow): string {
  return [w.statement && formatStatementTimes(w.statement), formatProbe(w.probe)].filter(Boolean).join('; ');
}
