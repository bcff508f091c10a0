/**
 * `WORKERS=N` as `npm start` runs it, under the bench's IPC: the primary reports the shared URL
 * and its workers' pids, and stops them all on `stop`.
 */
import cluster from 'node:cluster';
import { createApp } from '../server/app.ts';
import { runPrimary } from '../server/cluster-primary.ts';
import { loadConfig } from '../server/infra/config/config.ts';

const config = loadConfig(process.env);
if (cluster.isPrimary) {
  const { port, metricsUrl } = await runPrimary(config);
  const workers = Object.values(cluster.workers ?? {}).map((w) => w!.process.pid!);
  process.send?.({ type: 'ready', url: `http://${config.host}:${port}`, metricsUrl, pid: process.pid, workers });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'stop') process.kill(process.pid, 'SIGTERM');
  });
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
} else {
  const app = await createApp(config);
  await app.listen();
  process.once('SIGTERM', () => void app.close().finally(() => process.exit(0)));
}
