/**
 * Loaded into a server under test with `--import` (any checkout's: it needs nothing of the server),
 * it measures what stalls the server's event loop, for the bench to print beside delivery
 * latencies: timer lateness from `monitorEventLoopDelay`, and every GC pause from a
 * `PerformanceObserver`. Over IPC, `probe-start` opens a window and `probe-read` answers with the
 * window's figures (`probe-start` is answered too, so the caller knows the window is open).
 *
 * prom-client's default `nodejs_gc_duration_seconds` keeps only the first entry of each observer
 * callback, and under load one callback carries several pauses: it undercounts exactly when it matters.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';

/** The timer's period; a recorded interval minus this is how late the loop ran it. */
const RESOLUTION_MS = 1;

export interface ProbeWindow {
  /** Event-loop delay (timer lateness) over the window, ms. */
  loop: { p50: number; p99: number; max: number };
  /** GC pauses over the window: count, sum and longest, ms, and the sum per kind. */
  gc: { count: number; totalMs: number; maxMs: number; byKind: Record<string, number> };
  /** V8 heap in use at the window's end, MiB: what a mark-compact walks. */
  heapMiB: number;
  /** Each pause of 1 ms or more: its start (ms since the epoch) and length, so slow messages can be matched to them. */
  pauses: Array<[number, number]>;
}

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

// Enabled during a window only: an idle server beside the one under load (live-ab runs several)
// would otherwise wake a thousand times a second for nothing.
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
let gc = { count: 0, totalMs: 0, maxMs: 0, byKind: {} as Record<string, number> };
let pauses: Array<[number, number]> = [];
const take = (entries: PerformanceEntry[]) => {
  for (const e of entries) {
    const kind = KINDS[(e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? -1] ?? 'other';
    gc.count++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
    gc.byKind[kind] = (gc.byKind[kind] ?? 0) + e.duration;
    if (e.duration >= 1 && pauses.length < 100_000) pauses.push([performance.timeOrigin + e.startTime, e.duration]);
  }
};
const observer = new PerformanceObserver((list) => take(list.getEntries()));
observer.observe({ entryTypes: ['gc'] });

const lateness = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);

/**
 * With `allocations` set on probe-start: V8's sampling heap profiler over the window, garbage
 * included (what a scavenge has to deal with, by allocation site), written there at probe-read.
 */
let sampling: { session: Session; file: string } | undefined;
async function startSampling(file: string) {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 16_384, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  sampling = { session, file };
}
async function stopSampling() {
  if (!sampling) return;
  const { session, file } = sampling;
  sampling = undefined;
  const { profile } = await session.post('HeapProfiler.stopSampling');
  writeFileSync(file, JSON.stringify(profile));
  session.disconnect();
}

process.on('message', async (msg: { type?: string; allocations?: string }) => {
  if (msg?.type === 'probe-start') {
    if (msg.allocations) await startSampling(msg.allocations);
    take(observer.takeRecords());
    delay.reset();
    delay.enable();
    gc = { count: 0, totalMs: 0, maxMs: 0, byKind: {} };
    pauses = [];
    process.send?.({ type: 'probe-started' });
  } else if (msg?.type === 'probe-read') {
    await stopSampling();
    take(observer.takeRecords());
    delay.disable();
    const window: ProbeWindow = {
      loop: { p50: lateness(delay.percentile(50)), p99: lateness(delay.percentile(99)), max: lateness(delay.max) },
      gc: { ...gc, byKind: { ...gc.byKind } },
      heapMiB: process.memoryUsage().heapUsed / 2 ** 20,
      pauses,
    };
    process.send?.({ type: 'probe', window });
  }
});
