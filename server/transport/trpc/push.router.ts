import { PushSubscribed, PushSubscribeInput, PushUnsubscribed, PushUnsubscribeInput, VapidPublicKey } from '../../../contracts/index.ts';
import { limitedProcedure } from './limited.procedure.ts';
import { authedProcedure, router } from './procedures.ts';

export const pushRouter = router({
  /** The server's VAPID public key, the `applicationServerKey` of `pushManager.subscribe`. NOT_FOUND while push is off. */
  vapidPublicKey: authedProcedure.meta({ output: VapidPublicKey }).query(({ ctx }) => ({ publicKey: ctx.services.push.vapidPublicKey() })),

  /**
   * Registers a device (a browser's `PushSubscription`) for the caller; idempotent per endpoint,
   * at most 10 per user (the oldest go). INVALID_INPUT for an endpoint that is not https on a public address.
   * Each call resolves the endpoint's host, so it takes a token of the rare-acts bucket (SAFETY_…).
   */
  subscribe: limitedProcedure('safety')
    .input(PushSubscribeInput)
    .meta({ output: PushSubscribed })
    .mutation(async ({ ctx, input }) => ({ subscriptions: await ctx.services.push.subscribe(ctx.userId, input) })),

  /** Forgets one of the caller's devices. */
  unsubscribe: authedProcedure
    .input(PushUnsubscribeInput)
    .meta({ output: PushUnsubscribed })
    .mutation(async ({ ctx, input }) => ({ removed: await ctx.services.push.unsubscribe(ctx.userId, input.endpoint) })),
});
