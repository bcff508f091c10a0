import { FIELD_MESSAGES, ParleyError, type Message, type MessagePage } from '../../contracts/index.ts';
import type { MessageStore, NewMessage, Sql } from './message-store.ts';
import type { RoomBus } from './room-bus.ts';
import { openRoomFeed, type FeedItem } from './room-feed.ts';
import { createCoalescer } from './send-coalescer.ts';

export type { FeedItem, NewMessage };

export interface MessageService {
  /**
   * Stores the message with the room's next seq and publishes it; a repeated clientId returns the
   * first message. The caller has checked that the sender is in the room.
   */
  send(message: NewMessage): Promise<Message>;
  page(roomId: string, cursor: number, limit: number): Promise<MessagePage>;
  /** The room's live feed after `afterSeq` (null: from now on), subscribed once it resolves; see {@link openRoomFeed}. */
  feed(roomId: string, afterSeq: number | null, signal: AbortSignal): Promise<AsyncGenerator<FeedItem>>;
}

export interface MessageServiceDeps {
  bus: RoomBus;
  store: MessageStore;
  sql: Sql;
  /** The room's newest seq (the rooms service owns room rows). */
  lastSeq(roomId: string): Promise<number>;
  maxChars: number;
  onBatchError(err: unknown, size: number): void;
  /** Sends per statement, for metrics. */
  onBatch?(size: number): void;
}

export function createMessageService({ bus, store, sql, lastSeq, maxChars, onBatchError, onBatch }: MessageServiceDeps): MessageService {
  const coalescer = createCoalescer<NewMessage, Message>({
    keyOf: (m) => m.roomId,
    onBatchError,
    async run(messages) {
      onBatch?.(messages.length);
      const stored = await store.insert(sql, messages);
      return Promise.all(
        stored.map(async (message, i) => {
          if (message) return message;
          // Left out as a retry: its clientId is stored already.
          const { roomId, sender, clientId } = messages[i]!;
          const first = clientId === undefined ? undefined : await store.findByClientId(sql, roomId, sender, clientId);
          if (!first) throw new ParleyError('INTERNAL', 'A send was neither stored nor found by its clientId.');
          return first;
        }),
      );
    },
  });

  return {
    async send(message) {
      if (message.content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [FIELD_MESSAGES.maxChars(maxChars)] },
        });
      }
      const stored = await coalescer.submit(message);
      // Invariant: in one process a room's messages are published in seq order — the coalescer
      // resolves a room's sends in seq order, and each publishes in its own continuation, in that
      // order. The feed still repairs gaps, for readers that overflow and events from elsewhere.
      bus.publish(message.roomId, { type: 'message', message: stored });
      return stored;
    },

    async page(roomId, cursor, limit) {
      const rows = await store.readAfter(sql, roomId, cursor, limit + 1);
      const items = rows.slice(0, limit);
      return { items, nextCursor: rows.length > limit ? items.at(-1)!.seq : null };
    },

    feed(roomId, afterSeq, signal) {
      return openRoomFeed(
        {
          bus,
          roomId,
          readAfter: (after, limit, upTo) => store.readAfter(sql, roomId, after, limit, upTo),
          lastSeq: () => lastSeq(roomId),
        },
        { afterSeq, signal },
      );
    },
  };
}
