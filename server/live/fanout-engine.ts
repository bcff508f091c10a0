import type { CarriedEvent } from './room-bus.ts';

/** What one instance tells the others about one room in one tick: always the seq range, the events when they fit. */
export interface RoomBatch {
  /** The publishing instance; it delivered these events locally already and drops its own echo. */
  instance: string;
  /** The channel (see `channelOf` in bus-key.ts): a room's id, a user's channel or presence. */
  room: string;
  /** Milliseconds since the epoch at publish, for the fan-out lag histogram. */
  sentAt: number;
  /** The seqs of the messages published, when there are any. */
  fromSeq?: number;
  toSeq?: number;
  events: CarriedEvent[];
  /** Messages left out (payload limit): receivers read `fromSeq..toSeq` from the database. */
  omitted?: true;
}

export interface EngineHandlers {
  deliver(batch: RoomBatch): void;
  /**
   * The engine (re)connected, or finished subscribing `channel`: anything committed before that
   * may never arrive, so the feeds of every watched channel (or of `channel`) re-read the database.
   */
  resync(channel?: string): void;
  /** Publishing or receiving failed; the service carries on without live cross-instance events. */
  onError(err: unknown, what: string): void;
}

/** A way to reach the other instances. At-most-once: the room feed's gap repair makes it exact. */
export interface FanoutEngine {
  readonly name: 'postgres' | 'redis' | 'redis-cluster' | 'nats';
  start(handlers: EngineHandlers): Promise<void>;
  /** Fire and forget: a lost batch costs latency (the next event or a resync repairs it), never a send. */
  publish(batches: RoomBatch[]): void;
  /** Channels with local listeners; an engine may receive only these. */
  watch(channel: string): void;
  unwatch(channel: string): void;
  isUp(): boolean;
  close(): Promise<void>;
}
