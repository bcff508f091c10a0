import { tracked, type TrackedEnvelope } from '@trpc/server';
import {
  DeleteMessageInput,
  EditMessageInput,
  formatEventId,
  ListMessagesInput,
  MarkDeliveredInput,
  DeliveredMarker,
  MarkReadInput,
  Message,
  MessagePage,
  parseEventId,
  ReadMarker,
  RoomEventsInput,
  SendMessageInput,
  TypingInput,
  type RoomEvent,
} from '../../../contracts/index.ts';
import type { FeedItem } from '../../messages/messages.service.ts';
import { z } from 'zod';
import type { Metrics, Surface } from '../../infra/metrics/metrics.ts';
import { authedProcedure, router } from './procedures.ts';
import { limitedProcedure } from './limited.procedure.ts';
import type { AttachmentService } from '../../attachments/attachments.service.ts';

/** A page whose messages' attachments carry signed URLs; a page without any is returned as it is. */
async function signedPage(attachments: AttachmentService, page: MessagePage): Promise<MessagePage> {
  if (!page.items.some((m) => m.attachments)) return page;
  return { ...page, items: await Promise.all(page.items.map(attachments.signMessage)) };
}

export const messagesRouter = router({
  /** History keyset-paginated by seq, forward (default) or backward from the newest; oldest first within a page. */
  list: authedProcedure
    .input(ListMessagesInput)
    .meta({ output: MessagePage })
    .query(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      const page = await ctx.services.messages.page(input.roomId, { direction: input.direction, cursor: input.cursor ?? null, limit: input.limit });
      return signedPage(ctx.services.attachments, page);
    }),

  /** Persists a message from the caller, with its uploaded attachments; a retried `clientId` returns the first message. */
  send: limitedProcedure('send')
    .input(SendMessageInput)
    .meta({ output: Message })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      const message = await ctx.services.messages.send({ roomId: input.roomId, sender: ctx.userId, content: input.content, clientId: input.clientId, attachmentIds: input.attachmentIds });
      return ctx.services.attachments.signMessage(message);
    }),

  /** The sender replaces a message's content within the edit window; subscribers get `message_updated`. */
  edit: limitedProcedure('edit')
    .input(EditMessageInput)
    .meta({ output: Message })
    .mutation(async ({ ctx, input }) => {
      const pair = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      // New words reach the other participant as surely as a send does.
      await ctx.services.blocks.requireUnblocked(ctx.em, pair[0], pair[1]);
      return ctx.services.attachments.signMessage(await ctx.services.changes.edit(ctx.em, { ...input, userId: ctx.userId }));
    }),

  /** The sender deletes a message (soft: its seq stays, content goes); subscribers get `message_deleted`. */
  delete: limitedProcedure('delete')
    .input(DeleteMessageInput)
    .meta({ output: Message })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.changes.delete(ctx.em, { ...input, userId: ctx.userId });
    }),

  /** Moves the caller's read marker forward (never back); subscribers get `read`. */
  markRead: limitedProcedure('markRead')
    .input(MarkReadInput)
    .meta({ output: ReadMarker })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.changes.markRead(ctx.em, { ...input, userId: ctx.userId });
    }),

  /** Moves the caller's delivered marker forward (never back); subscribers get `delivered`. The SDK calls it for messages it receives. */
  markDelivered: limitedProcedure('markDelivered')
    .input(MarkDeliveredInput)
    .meta({ output: DeliveredMarker })
    .mutation(async ({ ctx, input }) => {
      await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      return ctx.services.changes.markDelivered(ctx.em, { ...input, userId: ctx.userId });
    }),

  /** Tells the other participant the caller is typing; throttled, never stored. */
  typing: limitedProcedure('typing')
    .input(TypingInput)
    .meta({ output: z.object({ delivered: z.boolean() }) })
    .mutation(async ({ ctx, input }) => {
      const pair = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
      // From this process's view of blocks, not a query: typing comes at keystroke rate.
      await ctx.services.blocks.requireUnblockedNow(ctx.userId, pair[0] === ctx.userId ? pair[1] : pair[0]);
      return ctx.services.typing.typing(input.roomId, ctx.userId);
    }),

  /**
   * The room's events: first everything after `lastEventId`, then live ones; every message and
   * every change (edit, deletion, read marker) once, each sequence in order. Every event's id is
   * the feed's position, also for typing and presence events, because tRPC's WebSocket client
   * forgets its resume point on an event without id.
   */
  onEvent: authedProcedure.input(RoomEventsInput).subscription(async ({ ctx, input, signal }) => {
    const pair = await ctx.services.rooms.requireParticipant(ctx.em, input.roomId, ctx.userId);
    // Awaited before returning, so tRPC's `started` means "nothing from now on is missed".
    const feed = await ctx.services.messages.feed(
      input.roomId,
      input.lastEventId ? parseEventId(input.lastEventId) : null,
      signal ?? new AbortController().signal,
      input.presence === false ? undefined : pair[0] === ctx.userId ? pair[1] : pair[0],
      ctx.userId,
    );
    return trackedEvents(feed, ctx.services.metrics, ctx.surface, ctx.services.attachments.signEvent);
  }),
});

/**
 * The feed's items as tRPC tracked events. A plain iterator rather than a second async generator:
 * every live event crosses this for every subscriber, and a generator frame costs a promise hop.
 * A class, so an idle subscription holds one small object rather than a closure per method.
 */
function trackedEvents(feed: AsyncGenerator<FeedItem>, metrics: Metrics, surface: Surface, sign: (event: RoomEvent) => Promise<RoomEvent>): AsyncIterableIterator<TrackedEnvelope<RoomEvent>> {
  metrics.subscription(surface, 1);
  return new TrackedEvents(feed, metrics, surface, sign);
}

class TrackedEvents implements AsyncIterableIterator<TrackedEnvelope<RoomEvent>> {
  #open = true;
  readonly #feed: AsyncGenerator<FeedItem>;
  readonly #metrics: Metrics;
  readonly #surface: Surface;
  readonly #sign: (event: RoomEvent) => Promise<RoomEvent>;

  constructor(feed: AsyncGenerator<FeedItem>, metrics: Metrics, surface: Surface, sign: (event: RoomEvent) => Promise<RoomEvent>) {
    this.#feed = feed;
    this.#metrics = metrics;
    this.#surface = surface;
    this.#sign = sign;
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  #ended() {
    if (this.#open) this.#metrics.subscription(this.#surface, -1);
    this.#open = false;
  }

  // Not an async method: an idle subscription waits here, and a suspended async frame weighs
  // more than a reaction on the feed's promise.
  next(): Promise<IteratorResult<TrackedEnvelope<RoomEvent>>> {
    return this.#feed.next().then(this.#item, this.#failed);
  }

  readonly #failed = (err: unknown): never => {
    this.#ended();
    throw err;
  };

  readonly #item = (item: IteratorResult<FeedItem>): IteratorResult<TrackedEnvelope<RoomEvent>> | Promise<IteratorResult<TrackedEnvelope<RoomEvent>>> => {
    if (item.done) {
      this.#ended();
      return { done: true, value: undefined };
    }
    this.#metrics.delivered(this.#surface);
    const { event, position } = item.value;
    const id = formatEventId(position.seq, position.change);
    // Only a message with attachments waits for signing; every other event goes out as it is.
    if ('message' in event && event.message.attachments) return this.#sign(event).then((signed) => ({ done: false, value: tracked(id, signed) }));
    return { done: false, value: tracked(id, event) };
  };

  async return(): Promise<IteratorResult<TrackedEnvelope<RoomEvent>>> {
    this.#ended();
    await this.#feed.return(undefined);
    return { done: true, value: undefined };
  }
}
