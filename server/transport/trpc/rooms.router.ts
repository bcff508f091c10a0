import { ArchiveState, ListRoomsInput, MuteRoomInput, OpenedRoom, OpenRoomInput, RequestAnswer, RoomActionInput, RoomMute, RoomPage, UnmuteRoomInput, type InboxEvent } from '../../../contracts/index.ts';
import { limitedProcedure } from './limited.procedure.ts';
import { authedProcedure, router } from './procedures.ts';

export const roomsRouter = router({
  /** Get-or-create the caller's room with another user; idempotent and race-safe. Rate-limited, and new rooms are capped per day. */
  open: authedProcedure
    .input(OpenRoomInput)
    .meta({ output: OpenedRoom, limit: 'openRoom' })
    .mutation(({ ctx, input }) => ctx.services.rooms.open(ctx.em, ctx.userId, input.otherUserId, input.name || undefined)),

  /**
   * The recipient answers a message request: the opener sees their presence, typing and receipts
   * from now on. Replying in the room does the same.
   */
  accept: limitedProcedure('safety')
    .input(RoomActionInput)
    .meta({ output: RequestAnswer })
    .mutation(async ({ ctx, input }) => {
      const pair = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.requests.accept(ctx.em, pair, ctx.userId, input.roomId);
    }),

  /** The recipient refuses a message request: it leaves their lists and takes no more sends, until they accept it. */
  decline: limitedProcedure('safety')
    .input(RoomActionInput)
    .meta({ output: RequestAnswer })
    .mutation(async ({ ctx, input }) => {
      const pair = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.requests.decline(ctx.em, pair, ctx.userId, input.roomId);
    }),

  /** Hides the room from the caller's `rooms.list` until a new message arrives in it. */
  archive: authedProcedure
    .input(RoomActionInput)
    .meta({ output: ArchiveState })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.rooms.archive(ctx.em, ctx.userId, input.roomId, true);
    }),

  /** Shows an archived room in `rooms.list` again. */
  unarchive: authedProcedure
    .input(RoomActionInput)
    .meta({ output: ArchiveState })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.rooms.archive(ctx.em, ctx.userId, input.roomId, false);
    }),

  /** The caller's rooms, newest activity first (keyset pages), with last message, unread count and the other's presence. */
  list: authedProcedure
    .input(ListRoomsInput)
    .meta({ output: RoomPage })
    .query(async ({ ctx, input }) => {
      const page = await ctx.services.rooms.list(ctx.em, ctx.userId, input);
      if (!page.items.some((r) => r.last_message?.attachments)) return page;
      const items = await Promise.all(page.items.map(async (r) => (r.last_message ? { ...r, last_message: await ctx.services.attachments.signMessage(r.last_message) } : r)));
      return { ...page, items };
    }),

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
  onEvent: authedProcedure.subscription(({ ctx, signal }) =>
    // Opened here, synchronously, so the per-user cap refuses before `started`.
    signedEvents(ctx.services.inbox.open(ctx.userId, signal ?? new AbortController().signal), ctx.services.attachments.signEvent),
  ),
});

/** The inbox's events, a message with attachments carrying signed URLs. */
async function* signedEvents(events: AsyncGenerator<InboxEvent>, sign: <E extends InboxEvent>(event: E) => Promise<E>): AsyncGenerator<InboxEvent> {
  try {
    for await (const event of events) yield 'message' in event && event.message.attachments ? await sign(event) : event;
  } finally {
    await events.return(undefined);
  }
}
