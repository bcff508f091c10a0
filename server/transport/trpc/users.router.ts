import { BlockedPage, BlockedUser, BlockUserInput, ListBlockedInput, Unblocked } from '../../../contracts/index.ts';
import { authedProcedure, router } from './procedures.ts';
import { limitedProcedure } from './limited.procedure.ts';

export const usersRouter = router({
  /**
   * Blocks a user: neither of the two can send, type or start a room with the other, and neither
   * sees the other's presence or read markers, until the caller unblocks. Idempotent.
   */
  block: limitedProcedure('safety')
    .input(BlockUserInput)
    .meta({ output: BlockedUser })
    .mutation(({ ctx, input }) => ctx.services.blocks.block(ctx.em, ctx.userId, input.userId)),

  /** Lifts the caller's block of a user; everything works again, history as it was. Idempotent. */
  unblock: limitedProcedure('safety')
    .input(BlockUserInput)
    .meta({ output: Unblocked })
    .mutation(({ ctx, input }) => ctx.services.blocks.unblock(ctx.em, ctx.userId, input.userId)),

  /** The users the caller has blocked, by user id (keyset pages). */
  listBlocked: authedProcedure
    .input(ListBlockedInput)
    .meta({ output: BlockedPage })
    .query(({ ctx, input }) => ctx.services.blocks.listBlocked(ctx.em, ctx.userId, input)),
});
