import { ListRoomsInput, OpenedRoom, OpenRoomInput, RoomPage } from '../../contracts/index.ts';
import { inboxFeed } from '../domain/inbox-feed.ts';
import { authedProcedure, router } from './procedures.ts';

export const roomsRouter = router({
  /** Get-or-create the caller's room with another user; idempotent and race-safe. */
  open: authedProcedure
    .input(OpenRoomInput)
    .meta({ output: OpenedRoom })
    .mutation(({ ctx, input }) => ctx.services.rooms.open(ctx.em, ctx.userId, input.otherUserId, input.name || undefined)),

  /** The caller's rooms, newest activity first (keyset pages), with last message, unread count and the other's presence. */
  list: authedProcedure
    .input(ListRoomsInput)
    .meta({ output: RoomPage })
    .query(({ ctx, input }) => ctx.services.rooms.list(ctx.em, ctx.userId, input)),

  /**
   * Live events of all the caller's rooms on one stream (messages, typing, reads, edits,
   * deletions, presence, new rooms). It starts with `ready`: re-read `rooms.list` then.
   */
  onEvent: authedProcedure.subscription(({ ctx, signal }) => {
    const { services, userId } = ctx;
    // The feed itself, not a generator around it: a `yield*` costs every event a promise hop.
    return inboxFeed({ bus: services.bus, userId, roomIds: () => services.rooms.roomIds(services.orm.em.fork(), userId), signal: signal ?? new AbortController().signal });
  }),
});
