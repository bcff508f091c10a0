/**
 * The Parley server under test, alone in its process so its CPU and RSS are its own.
 * Reports its URL over IPC; answers `gc` (with --expose-gc) so memory is measured after collection.
 */
import { writeHeapSnapshot } from 'node:v8';
import { createApp } from '../server/app.ts';
import { loadConfig } from '../server/infra/config/config.ts';

const app = await createApp(loadConfig(process.env));
const url = await app.listen();
process.send?.({ type: 'ready', url, metricsUrl: app.metricsUrl, pid: process.pid, jwtSecret: app.jwtSecret });

process.on('message', (msg: { type: string }) => {
  if (msg.type === 'gc') {
    // `lastResort`: V8's most thorough collection, which also gives back the pages it kept for
    // reuse, so the RSS that follows counts what is live rather than what the heap once grew to.
    (globalThis as { gc?: (options?: object) => void }).gc?.((msg as { lastResort?: boolean }).lastResort ? { type: 'major', execution: 'sync', flavor: 'last-resort' } : undefined);
    process.send?.({ type: 'gc-done', listeners: app.services.bus.listenerCount(), heapUsed: process.memoryUsage().heapUsed });
  } else if (msg.type === 'settle') {
    // Sockets just opened queue their users' presence changes: idle means those are stored.
    void app.services.presence.settled().then(() => process.send?.({ type: 'settled' }));
  } else if (msg.type === 'heap') {
    // Once the sockets' presence changes are stored, after a full collection: the snapshot holds
    // what idle sockets keep, not the work their arrival queued.
    void app.services.presence.settled().then(() => {
      (globalThis as { gc?: () => void }).gc?.();
      const file = writeHeapSnapshot((msg as { file?: string }).file);
      process.send?.({ type: 'heap-done', file, memory: process.memoryUsage() });
    });
  } else if (msg.type === 'stop') {
    // A clean exit, so --cpu-prof writes its profile.
    app.close().finally(() => process.exit(0));
  }
});
process.on('disconnect', () => void app.close().finally(() => process.exit(0)));
