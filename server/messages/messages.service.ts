import { FIELD_MESSAGES, formatEventId, ParleyError, type Message, type MessagePage, type PageDirection, type PresenceEvent, type RoomEvent } from '../../contracts/index.ts';
import { catchUpKey, type CatchUpRead, type MessageStore, type NewMessage, type PageRequest, type Sql, type StoredAttachment, type StoredPage } from './message-store.ts';
import { createReadBatcher } from './read-batcher.ts';
import { roomKey } from '../live/bus-key.ts';
import type { RoomBus } from '../live/room-bus.ts';
import type { RoomChangeLog, StoredChange } from './room-changes.ts';
import { openRoomFeed, type FeedItem, type FeedSignal, type Position, type RoomFeedSource } from './room-feed.ts';
import { queuedHook, withQueuedHook } from './queued-hook.ts';
import { createCoalescer } from './send-coalescer.ts';
import { watchRevealed } from '../presence/watch-revealed.ts';
import type { EventScreen } from '../safety/block-view.ts';

export type { FeedItem, NewMessage, Position, StoredAttachment };

/** What sending with attachments needs of them (server/attachments/ provides it). */
export interface SendAttachments {
  /**
   * Checks the caller's pending attachments of the room (objects, sizes, real types) and describes
   * them; throws INVALID_INPUT otherwise. The send's own statement marks them used
   * ({@link MessageStore.insertWithAttachments}); until {@link finished}, another send of them is refused.
   */
  prepare(roomId: string, sender: string, ids: readonly string[]): Promise<StoredAttachment[]>;
  /** Told once such a message is stored (thumbnails are made off the request path). */
  sent(stored: Message): void;
  /** Told once the statement of a send {@link prepare} passed has run, stored or not. */
  finished(ids: readonly string[]): void;
}

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
  feed(roomId: string, after: { seq: number; change: number | null } | null, signal: FeedSignal, presenceOf?: string, viewer?: string): Promise<AsyncGenerator<FeedItem>>;
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
  /** What a reader may not see (see safety/block-view.ts); held until the feed lets go of the bus. */
  screen?(viewer: string): Promise<EventScreen>;
  /** A user's presence as of now (see presence/), for a reader it has just become visible to. */
  presenceNow?(userId: string): Promise<PresenceEvent>;
  /** A presence the feed could not read for a reader it became visible to: the next change carries it. */
  onError?(err: unknown): void;
  /** Each message once stored and published (push notifications, webhooks); must return at once. */
  onStored?(message: Message): void;
  attachments?: SendAttachments;
  /** Runs a read on a read replica that has every write made before it, else on `sql` (see infra/db/read-replicas.ts). */
  replicaRead?<T>(read: 'history' | 'feed', fn: (sql: Sql) => Promise<T>): Promise<T>;
}

export function createMessageService({ bus, watchPresence, store, sql, changes, position, maxChars, onBatchError, onBatch, sendRefusal, screen, presenceNow, onError, onStored, attachments, moderate, replied, replicaRead = (_read, fn) => fn(sql) }: MessageServiceDeps): MessageService {
  // Feeds that resume in one turn (a reconnect storm) read their catch-up in one statement.
  const catchUps = createReadBatcher<CatchUpRead, Message[]>({
    keyOf: catchUpKey,
    run: (reads) => replicaRead('feed', (on) => store.readAfterMany(on, reads)),
  });
  const changeCatchUps = createReadBatcher<CatchUpRead, StoredChange[]>({
    keyOf: catchUpKey,
    run: (reads) => replicaRead('feed', (on) => changes.readAfterMany(on, reads)),
  });
  const rooms: RoomReads = { bus, watchPresence, store, changes, position, replicaRead, catchUp: (read) => catchUps.load(read), changeCatchUp: (read) => changeCatchUps.load(read) };

  /** What every stored send does next: tells push and webhooks, and a reply accepts a request. */
  async function afterStored(message: NewMessage, stored: Message) {
    onStored?.(stored);
    const accepting = replied?.(message.roomId, message.sender);
    if (accepting) await accepting;
    return stored;
  }

  const coalescer = createCoalescer<NewMessage, Message>({
    keyOf: (m) => m.roomId,
    onBatchError,
    // Same room order as every other send, but batches of their own: a batch with an attachment taken fails as a whole.
    separate: (m) => m.attachments !== undefined,
    // One statement at a time, so that under load they share statements more: a statement that
    // marks attachments costs PostgreSQL a fixed 80 µs or so more than a text one (opening the
    // table and its indexes for the update), and with two at once most carried a single send.
    separateMaxInflight: 1,
    async run(messages) {
      const started = performance.now();
      const stored = messages[0]!.attachments ? await store.insertWithAttachments(sql, messages) : await store.insert(sql, messages);
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
    run: (requests) => replicaRead('history', (on) => store.readPages(on, requests)),
  });

  async function sendWithAttachments(message: NewMessage, hook: (() => void) | undefined) {
    if (!attachments) throw new ParleyError('INVALID_INPUT', 'Attachments are not enabled.', { fields: { attachmentIds: ['Attachments are not enabled.'] } });
    // A retry is answered before its attachments, already used by the first, are checked again.
    const first = message.clientId === undefined ? undefined : await store.findByClientId(sql, message.roomId, message.sender, message.clientId);
    if (first) {
      hook?.();
      return first;
    }
    // Checking the objects (storage round trips) happens before the send takes its place in the room's order.
    const prepared = await attachments.prepare(message.roomId, message.sender, message.attachmentIds!);
    const submitted = coalescer.submit({ ...message, attachments: prepared }).finally(() => attachments.finished(message.attachmentIds!));
    hook?.();
    const stored = await submitted;
    bus.publish(roomKey(message.roomId), { type: 'message', message: stored });
    attachments.sent(stored);
    return afterStored(message, stored);
  }

  return {
    async send(message) {
      if (message.content.length > maxChars) {
        throw new ParleyError('INVALID_INPUT', `Message content exceeds ${maxChars} characters.`, {
          fields: { content: [FIELD_MESSAGES.maxChars(maxChars)] },
        });
      }
      const hook = queuedHook();
      // Before the send joins a batch: a slow hook holds this send only, never a statement of others.
      if (moderate) message = { ...message, content: await moderate({ action: 'send', sender: message.sender, room: message.roomId, content: message.content }) };
      if (message.attachmentIds?.length) return sendWithAttachments(message, hook);
      const submitted = coalescer.submit(message);
      hook?.();
      const stored = await submitted;
      // Invariant: in one process a room's messages are published in seq order — the coalescer
      // resolves a room's sends in seq order, and each publishes in its own continuation, in that
      // order. The feed still repairs gaps, for readers that overflow and events from elsewhere.
      bus.publish(roomKey(message.roomId), { type: 'message', message: stored });
      return afterStored(message, stored);
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
      // Only a feed that carries presence watches for it to be revealed: the others share the service's reads.
      const reads = screened && presenceNow && presenceOf !== undefined ? { ...rooms, watchPresence: watchRevealed(watchPresence, screened, presenceNow, onError) } : rooms;
      // The feed lets go of the screen as it lets go of the bus (at once if its signal has aborted): no listener of its own.
      return openRoomFeed(new StoredRoom(reads, roomId), { after, signal, presenceOf, ...(screened && { hide: screened.hides, release: screened.release }) }).catch((err: unknown) => {
        screened?.release();
        throw err;
      });
    },
  };
}

/** What every feed of the service reads through: the service's own dependencies, shared by all its feeds. */
type RoomReads = Pick<MessageServiceDeps, 'bus' | 'watchPresence' | 'store' | 'changes' | 'position'> & {
  replicaRead: NonNullable<MessageServiceDeps['replicaRead']>;
  catchUp(read: CatchUpRead): Promise<Message[]>;
  changeCatchUp(read: CatchUpRead): Promise<StoredChange[]>;
};

/** A room as its feed reads it: one small object per feed, its methods shared (an idle feed lives as long as its socket). */
class StoredRoom implements RoomFeedSource {
  readonly #reads: RoomReads;
  readonly roomId: string;

  constructor(reads: RoomReads, roomId: string) {
    this.#reads = reads;
    this.roomId = roomId;
  }

  get bus() {
    return this.#reads.bus;
  }

  get watchPresence() {
    return this.#reads.watchPresence;
  }

  // Catch-up only: the feed's position and live events come from the primary and the bus.
  readAfter(after: number, limit: number, upTo?: number) {
    return this.#reads.catchUp({ roomId: this.roomId, after, limit, upTo });
  }

  readChangesAfter(after: number, limit: number, upTo?: number) {
    return this.#reads.changeCatchUp({ roomId: this.roomId, after, limit, upTo });
  }

  position() {
    return this.#reads.position(this.roomId);
  }
}
