import { CreateReportInput, Report } from '../../../contracts/index.ts';
import { router } from './procedures.ts';
import { limitedProcedure } from './limited.procedure.ts';

export const reportsRouter = router({
  /**
   * Reports a message of one of the caller's rooms, or the conversation; the message is kept as it
   * is now. One report per message (or conversation) per caller: a repeat answers the first.
   */
  create: limitedProcedure('safety')
    .input(CreateReportInput)
    .meta({ output: Report })
    .mutation(async ({ ctx, input }) => {
      const participants = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.reports.create(ctx.em, { ...input, participants, reporter: ctx.userId });
    }),
});
