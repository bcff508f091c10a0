import { ListRoomsInput, MuteRoomInput, OpenedRoom, OpenRoomInput, RoomMute, RoomPage, UnmuteRoomInput } from '../../../contracts/index.ts';
import { authedProcedure, router } from './procedures.ts';

export const roomsRouter = router({
  /** Get-or-create the caller's room with another user; idempotent and race-safe. Rate-limited, and new rooms are capped per day. */
  open: authedProcedure
    .input(OpenRoomInput)
    .meta({ output: OpenedRoom, limit: 'openRoom' })
    .mutation(({ ctx, input }) => ctx.services.rooms.open(ctx.em, ctx.userId, input.otherUserId, input.name || undefined)),

  /** The caller's rooms, newest activity first (keyset pages), with last message, unread count and the other's presence. */
  list: authedProcedure
    .input(ListRoomsInput)
    .meta({ output: RoomPage })
    .query(({ ctx, input }) => ctx.services.rooms.list(ctx.em, ctx.userId, input)),

  /** No push notifications for the room until `until` (or until unmuted); live events are unchanged. */
  mute: authedProcedure
    .input(MuteRoomInput)
    .meta({ output: RoomMute })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.push.mute(ctx.userId, input.roomId, input.until);
    }),

  /** Pushes for the room again. */
  unmute: authedProcedure
    .input(UnmuteRoomInput)
    .meta({ output: RoomMute })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.push.unmute(ctx.userId, input.roomId);
    }),

  /**
   * Live events of all the caller's rooms on one stream (messages, typing, reads, edits,
   * deletions, presence, new rooms). It starts with `ready`: re-read `rooms.list` then.
   * A user's streams share one set of listeners; RATE_LIMITED past a few per user.
   */
  onEvent: authedProcedure.subscription(({ ctx, signal }) => ctx.services.inbox.open(ctx.userId, signal ?? new AbortController().signal)),
});
