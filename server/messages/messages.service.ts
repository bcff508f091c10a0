import { FIELD_MESSAGES, formatEventId, ParleyError, type Message, type MessagePage, type PageDirection, type RoomEvent } from '../../contracts/index.ts';
import type { MessageStore, NewMessage, PageRequest, Sql, StoredPage } from './message-store.ts';
import { createReadBatcher } from './read-batcher.ts';
import { roomKey } from '../live/bus-key.ts';
import type { RoomBus } from '../live/room-bus.ts';
import type { RoomChangeLog } from './room-changes.ts';
import { openRoomFeed, type FeedItem, type Position, type RoomFeedSource } from './room-feed.ts';
import { queuedHook, withQueuedHook } from './queued-hook.ts';
import { createCoalescer } from './send-coalescer.ts';

export type { FeedItem, NewMessage, Position };

export interface MessageService {
  /**
   * Stores the message with the room's next seq and publishes it; a repeated clientId returns the
   * first message. The caller has checked that the sender is in the room. Inside {@link whenQueued}
   * the hook is told once the message has its place in the room's order.
   */
  send(message: NewMessage): Promise<Message>;
  /**
   * Runs `call`, which sends one message by whatever path (through the tRPC router, say), and calls
   * `onQueued` once that message has its place in its room's order: sends made after that are
   * stored after it. A connection that keeps its messages in order starts the next one then, not
   * once this one is stored, so a burst shares statements.
   */
  whenQueued<T>(onQueued: () => void, call: () => Promise<T>): Promise<T>;
  /**
   * One page of history; `cursor` null starts at the oldest (forward) or the newest (backward).
   * Pages asked for in one event-loop turn are read in one statement (read-batcher.ts).
   */
  page(roomId: string, page: { direction: PageDirection; cursor: number | null; limit: number }): Promise<MessagePage>;
  /**
   * The room's live feed after `after` (null: from now on; a null `change`: changes from now on),
   * subscribed once it resolves; see {@link openRoomFeed}.
   */
  /**
   * `presenceOf`: the other participant, whose presence changes the feed carries (see room-feed.ts).
   * `viewer`: the reader, whose blocks screen what the feed shows them.
   */
  feed(roomId: string, after: { seq: number; change: number | null } | null, signal: AbortSignal, presenceOf?: string, viewer?: string): Promise<AsyncGenerator<FeedItem>>;
}

export interface MessageServiceDeps {
  bus: RoomBus;
  watchPresence: RoomFeedSource['watchPresence'];
  store: MessageStore;
  sql: Sql;
  changes: RoomChangeLog;
  /** The room's newest message seq and change seq (the rooms service owns room rows). */
  position(roomId: string): Promise<Position>;
  maxChars: number;
  onBatchError(err: unknown, size: number): void;
  /** A statement's sends and duration, for metrics. */
  onBatch?(size: number, seconds: number): void;
  /** Why a send the statement left out, not being a retry, was refused (a block); asked only then. */
  sendRefusal?(roomId: string): Promise<ParleyError | undefined>;
  /** The content to store, or CONTENT_REJECTED (see moderation/); absent when nothing is configured. */
  moderate?(candidate: { action: 'send'; sender: string; room: string; content: string }): Promise<string>;
  /** Told of every stored send (a recipient's first reply accepts a message request); undefined when there is nothing to wait for. */
  replied?(roomId: string, sender: string): Promise<void> | undefined;
  /** What a reader may not see (see safety/block-view.ts); held until the feed's signal aborts. */
  screen?(viewer: string): Promise<{ hides(event: RoomEvent): boolean; release(): void }>;
}

export function createMessageService({ bus, watchPresence, store, sql, changes, position, maxChars, onBatchError, onBatch, sendRefusal, screen, moderate, replied }: MessageServiceDeps): MessageService {
  const coalescer = createCoalescer<NewMessage, Message>({
    keyOf: (m) => m.roomId,
    onBatchError,
    async run(messages) {
      const started = performance.now();
      const stored = await store.insert(sql, messages);
      onBatch?.(messages.length, (performance.now() - started) / 1000);
      return Promise.all(
        stored.map(async (message, i) => {
          if (message) return message;
          // Left out as a retry (its clientId is stored already), or refused by a block.
          const { roomId, sender, clientId } = messages[i]!;
          const first = clientId === undefined ? undefined : await store.findByClientId(sql, roomId, sender, clientId);
          if (first) return first;
          throw (await sendRefusal?.(roomId)) ?? new ParleyError('INTERNAL', 'A send was neither stored nor found by its clientId.');
        }),
      );
    },
  });

  const pages = createReadBatcher<PageRequest, StoredPage>({
    keyOf: (p) => `${p.roomId} ${p.direction} ${p.cursor} ${p.limit}`,
    run: (requests) => store.readPages(sql, requests),
  });

  return {
    async send(message) {
      if (message.content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [FIELD_MESSAGES.maxChars(maxChars)] },
        });
      }
      // Before the send joins a batch: a slow hook holds this send only, never a statement of others.
      if (moderate) message = { ...message, content: await moderate({ action: 'send', sender: message.sender, room: message.roomId, content: message.content }) };
      const submitted = coalescer.submit(message);
      queuedHook()?.();
      const stored = await submitted;
      // Invariant: in one process a room's messages are published in seq order — the coalescer
      // resolves a room's sends in seq order, and each publishes in its own continuation, in that
      // order. The feed still repairs gaps, for readers that overflow and events from elsewhere.
      bus.publish(roomKey(message.roomId), { type: 'message', message: stored });
      const accepting = replied?.(message.roomId, message.sender);
      if (accepting) await accepting;
      return stored;
    },

    whenQueued: withQueuedHook,

    async page(roomId, { direction, cursor, limit }) {
      const { messages, changeSeq } = await pages.load({ roomId, direction, cursor, limit: limit + 1 });
      const more = messages.length > limit;
      // The extra row tells whether another page follows; it sits at the far end of the page.
      const items = direction === 'forward' ? messages.slice(0, limit) : messages.slice(more ? 1 : 0);
      const nextCursor = more ? (direction === 'forward' ? items.at(-1)!.seq : items[0]!.seq) : null;
      const newest = items.at(-1)?.seq ?? (direction === 'forward' ? (cursor ?? 0) : Math.max((cursor ?? 1) - 1, 0));
      return { items, nextCursor, lastEventId: formatEventId(newest, changeSeq) };
    },

    async feed(roomId, after, signal, presenceOf, viewer) {
      const screened = viewer === undefined ? undefined : await screen?.(viewer);
      if (screened) {
        if (signal.aborted) screened.release();
        else signal.addEventListener('abort', screened.release, { once: true });
      }
      return openRoomFeed(
        {
          bus,
          watchPresence,
          roomId,
          readAfter: (afterSeq, limit, upTo) => store.readAfter(sql, roomId, afterSeq, limit, upTo),
          readChangesAfter: (afterChange, limit, upTo) => changes.readAfter(sql, roomId, afterChange, limit, upTo),
          position: () => position(roomId),
        },
        { after, signal, presenceOf, ...(screened && { hide: screened.hides }) },
      ).catch((err: unknown) => {
        screened?.release();
        throw err;
      });
    },
  };
}
