import { BlockedPage, BlockedUser, BlockUserInput, ListBlockedInput, PrivacySettings, Unblocked, UpdatePrivacyInput } from '../../../contracts/index.ts';
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

  /**
   * Changes the caller's privacy settings and answers all of them (`{}` only reads them). Hiding
   * one's presence or read receipts from everyone also hides everyone's from oneself.
   */
  updatePrivacy: limitedProcedure('safety')
    .input(UpdatePrivacyInput)
    .meta({ output: PrivacySettings })
    .mutation(({ ctx, input }) => ctx.services.requests.updatePrivacy(ctx.em, ctx.userId, input)),

  /** The users the caller has blocked, by user id (keyset pages). */
  listBlocked: authedProcedure
    .input(ListBlockedInput)
    .meta({ output: BlockedPage })
    .query(({ ctx, input }) => ctx.services.blocks.listBlocked(ctx.em, ctx.userId, input)),
});
