import type { RoomCreatedEvent, RoomEvent } from '../../contracts/index.ts';
import { channelOf, type BusKey } from './bus-key.ts';
import { createListenerSets } from './listener-sets.ts';

/**
 * Not a room event: stored messages may have been missed (a fan-out engine reconnected, or carried
 * only a seq range), so every feed of the room re-reads the database from its last seq.
 */
export interface CatchUp {
  type: 'catch-up';
}
/**
 * Not a room event: what two users may see of each other changed (a block, a message request
 * answered); instances re-read what they hold of either. `everyone`: a user's privacy settings
 * changed, which touches every partner of theirs: instances re-read all they hold.
 */
export interface BlocksChanged {
  type: 'blocks_changed';
  users: string[];
  everyone?: boolean;
}
/** Not a room event: a user was banned, unbanned or erased; instances re-read their ban and close their sockets. */
export interface BansChanged {
  type: 'bans_changed';
  user: string;
  /** The user's id is gone from the database: instances forget what they remember of them. */
  erased?: boolean;
}
/** What travels on the bus: room events and catch-ups under a room's key, new rooms under a user's (see inbox-feed.ts), block changes under the safety key. */
export type BusEvent = RoomEvent | CatchUp | RoomCreatedEvent | BlocksChanged | BansChanged;
/** What an engine carries between instances: everything but catch-ups, which each instance raises for itself. */
export type CarriedEvent = Exclude<BusEvent, CatchUp>;
export type RoomListener = (event: BusEvent) => void;

/**
 * Live fan-out of room events to every surface (tRPC subscriptions and legacy sockets), in this
 * process and, with an engine, on every instance. Keys are made in bus-key.ts.
 */
export interface RoomBus {
  publish(key: BusKey, event: BusEvent): void;
  /** Returns the unsubscribe function. */
  subscribe(key: BusKey, listener: RoomListener): () => void;
  /** Number of live listeners, for readiness and metrics. */
  listenerCount(): number;
}

export function createRoomBus(onListenerError: (err: unknown) => void): RoomBus {
  const channels = createListenerSets<string, BusEvent>(onListenerError);
  return {
    publish: (key, event) => channels.publish(channelOf(key), event),
    subscribe: (key, listener) => channels.subscribe(channelOf(key), listener),
    listenerCount: channels.count,
  };
}
