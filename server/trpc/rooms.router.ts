import { z } from 'zod';
import { OpenedRoom, OpenRoomInput, RoomSummary } from '../../contracts/index.ts';
import { authedProcedure, router } from './init.ts';

export const roomsRouter = router({
  /** Get-or-create the caller's room with another user; idempotent and race-safe. */
  open: authedProcedure
    .input(OpenRoomInput)
    .meta({ output: OpenedRoom })
    .mutation(({ ctx, input }) => ctx.services.rooms.open(ctx.em, ctx.userId, input.otherUserId, input.name || undefined)),

  /** The caller's rooms, newest activity first, each with its last message. */
  list: authedProcedure
    .meta({ output: z.array(RoomSummary) })
    .query(({ ctx }) => ctx.services.rooms.list(ctx.em, ctx.userId)),
});
