/**
 * A load-generator process: load is generated away from the server process so each side's CPU
 * and memory are its own. Receives one task over IPC, may exchange commands, posts one result.
 */
import { idleConnections } from './scenarios/connections.ts';
import { idleSockets } from './scenarios/idle-sockets.ts';
import { cannonLoad } from './scenarios/http-autocannon.ts';
import { deliveryLoad } from './scenarios/live-delivery.ts';
import { pushPostAt, pushSendAt } from './scenarios/push.ts';
import { stormClients } from './scenarios/reconnect-storm.ts';
import { sendLoad } from './scenarios/send-throughput.ts';
import type { Control } from './workers.ts';


type Task = (params: any, control: Control) => Promise<unknown>;
const tasks: Record<string, Task> = { sendLoad, deliveryLoad, idleConnections, idleSockets, cannonLoad, pushPostAt, pushSendAt, stormClients };

const inbox: Array<{ type: string }> = [];
const waiters: Array<{ type: string; resolve(msg: any): void }> = [];
const control: Control = {
  post: (msg) => process.send?.(msg),
  command: (type) =>
    new Promise((resolve) => {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) resolve(inbox.splice(i, 1)[0] as never);
      else waiters.push({ type, resolve });
    }),
};

process.on('message', (msg: { type: string; task?: string; params?: unknown }) => {
  if (msg.type === 'task') {
    const task = tasks[msg.task!];
    if (!task) return control.post({ type: 'error', error: `unknown task ${msg.task}` });
    task(msg.params, control).then(
      (result) => control.post({ type: 'result', result }),
      (err: unknown) => control.post({ type: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
    return;
  }
  const i = waiters.findIndex((w) => w.type === msg.type);
  if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg);
  else inbox.push(msg);
});
// The parent going away ends the load at once; every loop is also bounded on its own.
process.on('disconnect', () => process.exit(0));
control.post({ type: 'booted' });
