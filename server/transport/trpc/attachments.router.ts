import { AttachmentUrlInput, AttachmentUrls, CreatedUpload, CreateUploadInput, isParleyError, ParleyError } from '../../../contracts/index.ts';
import { authedProcedure, router } from './procedures.ts';
import { limitedProcedure } from './limited.procedure.ts';

export const attachmentsRouter = router({
  /**
   * A signed, short-lived upload for one file of a message the caller is about to send in
   * `roomId`; send it with `messages.send({ attachmentIds })` once uploaded.
   */
  createUpload: limitedProcedure('upload')
    .input(CreateUploadInput)
    .meta({ output: CreatedUpload })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.attachments.createUpload({ ...input, uploader: ctx.userId });
    }),

  /** Fresh signed URLs of an attachment of a message in one of the caller's rooms. */
  url: authedProcedure
    .input(AttachmentUrlInput)
    .meta({ output: AttachmentUrls })
    .query(async ({ ctx, input }) => {
      const found = await ctx.services.attachments.roomOf(input.attachmentId);
      const notFound = new ParleyError('ATTACHMENT_NOT_FOUND', 'No such attachment.');
      if (!found) throw notFound;
      // Someone else's room hides its attachments as it hides itself.
      await ctx.services.rooms.requireParticipant(ctx.em, found.roomId, ctx.userId).catch((err: unknown) => {
        throw isParleyError(err) && err.code === 'ROOM_NOT_FOUND' ? notFound : err;
      });
      return ctx.services.attachments.urls(found.message, input.attachmentId);
    }),
});
