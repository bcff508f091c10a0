import type { InboxEvent, RoomSummary } from '../../client-sdk/index.ts';

export const activity = (r: RoomSummary) => r.last_message?.created_at ?? '';

/** Applies one inbox event to the rooms; unread stays exact because `rooms.list` is re-read on every `ready`. */
export function apply(rooms: Map<string, RoomSummary>, e: InboxEvent, me: string): Map<string, RoomSummary> {
  const next = new Map(rooms);
  const room = (id: string) => next.get(id);
  // A room the list already has keeps the list's summary (its messages and unread count).
  if (e.type === 'room_created') {
    if (!next.has(e.room.id)) next.set(e.room.id, e.room);
  }
  else if (e.type === 'message') {
    const r = room(e.message.chat_room);
    if (r && e.message.seq > r.last_seq) {
      // A reply answers a request: the recipient's own, or the other's to one the caller sent.
      const answered = (r.request === 'received' && e.message.sender === me) || (r.request === 'sent' && e.message.sender !== me);
      next.set(r.id, {
        ...r,
        last_seq: e.message.seq,
        last_message: e.message,
        unread: r.unread + (e.message.sender === me ? 0 : 1),
        ...(answered && { request: null }),
        // A new message takes a room out of the archive.
        archived: false,
      });
    }
  } else if (e.type === 'read') {
    const r = room(e.chat_room);
    if (r && e.user === me) next.set(r.id, { ...r, read_seq: e.seq, unread: e.seq >= r.last_seq ? 0 : r.unread });
    else if (r) next.set(r.id, { ...r, other_read_seq: e.seq });
  } else if (e.type === 'message_updated' || e.type === 'message_deleted') {
    const r = room(e.message.chat_room);
    if (r?.last_message?.id === e.message.id) next.set(r.id, { ...r, last_message: e.message });
  } else if (e.type === 'presence') {
    for (const r of next.values()) if (r.other.user === e.user) next.set(r.id, { ...r, other: { user: e.user, online: e.online, last_seen_at: e.last_seen_at } });
  }
  return next;
}

/**
 * The rooms after a re-read of `rooms.list` that started at `ready`: the list, then every event
 * that arrived while it was read. Replacing the rooms with the list alone lost a room created
 * meanwhile when the list was read before it (a flaky browser test showed it); events the list
 * already covers change nothing (apply compares seqs).
 */
export function fromList(items: RoomSummary[], since: InboxEvent[], me: string): Map<string, RoomSummary> {
  return since.reduce((rooms, e) => apply(rooms, e, me), new Map(items.map((r) => [r.id, r])));
}

type Rooms = Map<string, RoomSummary>;

/**
 * Keeps an inbox exact over one `rooms.onEvent` stream: events apply as they come, and every
 * `ready` (the first, and one after each reconnect) re-reads `rooms.list` and lays the events that
 * arrived meanwhile on top. Only the newest re-read lands: one overtaken by a later `ready` is
 * dropped, since its events stop at that `ready` and its list may be older.
 */
export function inboxSync(me: string, readList: () => Promise<RoomSummary[]>, update: (next: (rooms: Rooms) => Rooms) => void) {
  /** Events since the last `ready`, while its re-read is in flight. */
  let since: InboxEvent[] | null = null;
  return async (e: InboxEvent): Promise<void> => {
    if (e.type !== 'ready') {
      since?.push(e);
      return update((rooms) => apply(rooms, e, me));
    }
    const mine: InboxEvent[] = (since = []);
    let items: RoomSummary[];
    try {
      items = await readList();
    } catch (err) {
      if (since === mine) since = null;
      throw err;
    }
    if (since !== mine) return;
    since = null;
    update(() => fromList(items, mine, me));
  };
}
