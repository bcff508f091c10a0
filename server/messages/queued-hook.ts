import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Who, in the current call, waits to hear that its send has its place in its room's order. It
 * travels with the call rather than as an argument because the call goes through a procedure on
 * its way to the service (the `ws/chat` adapter calls the tRPC router), and a procedure's context
 * and input are the router's public API, the same for every surface.
 */
const queuedHooks = new AsyncLocalStorage<() => void>();

/** Runs `call`; `onQueued` hears when the message it sends is queued (see MessageService.send). */
export function withQueuedHook<T>(onQueued: () => void, call: () => T): T {
  return queuedHooks.run(onQueued, call);
}

/** The current call's hook, if it has one. */
export function queuedHook(): (() => void) | undefined {
  return queuedHooks.getStore();
}
