import { describe, expect, it } from 'vitest';
import type { InboxEvent, Message, RoomSummary } from '../client-sdk/index.ts';
import { fromList, inboxSync } from '../demo/src/inbox-state.ts';

const ROOM = '11111111-1111-4111-8111-111111111111';
const NEW_ROOM = '22222222-2222-4222-8222-222222222222';
const summary = (id: string, other: string, lastSeq: number, unread: number, last: Message | null = null): RoomSummary => ({
  id,
  participant1: 'carol',
  participant2: other,
  name: null,
  last_seq: lastSeq,
  last_message: last,
  unread,
  read_seq: 0,
  other_read_seq: 0,
  other_delivered_seq: 0,
  other: { user: other, online: false, last_seen_at: null },
  request: null,
  archived: false,
});
const message = (room: string, seq: number): Message => ({ id: `00000000-0000-4000-8000-00000000000${seq}`, chat_room: room, sender: 'dave', content: `m${seq}`, created_at: '2026-11-26T12:00:00.000Z', seq });

describe('demo inbox: a re-read of rooms.list and the events that arrived while it was read', () => {
  it('keeps a room created after the list was read but announced before the list arrived', () => {
    const list = [summary(ROOM, 'erin', 0, 0)];
    const since: InboxEvent[] = [{ type: 'room_created', room: summary(NEW_ROOM, 'dave', 0, 0) }];
    expect([...fromList(list, since, 'carol').keys()].sort()).toEqual([ROOM, NEW_ROOM]);
  });

  it('counts a message the list already holds once, and one it does not hold on top', () => {
    const list = [summary(NEW_ROOM, 'dave', 2, 2, message(NEW_ROOM, 2))];
    const since: InboxEvent[] = [
      { type: 'room_created', room: summary(NEW_ROOM, 'dave', 0, 0) },
      { type: 'message', message: message(NEW_ROOM, 2) },
      { type: 'message', message: message(NEW_ROOM, 3) },
    ];
    const room = fromList(list, since, 'carol').get(NEW_ROOM)!;
    expect([room.last_seq, room.unread, room.last_message?.content]).toEqual([3, 3, 'm3']);
  });

  it('a re-read overtaken by a later ready does not land, even when it answers last', async () => {
    let rooms = new Map<string, RoomSummary>();
    const reads: Array<(items: RoomSummary[]) => void> = [];
    const onEvent = inboxSync('carol', () => new Promise((resolve) => reads.push(resolve)), (next) => (rooms = next(rooms)));
    const first = onEvent({ type: 'ready' });
    const second = onEvent({ type: 'ready' });
    await onEvent({ type: 'message', message: message(ROOM, 3) });
    reads[1]!([summary(ROOM, 'erin', 2, 2)]);
    await second;
    reads[0]!([summary(ROOM, 'erin', 1, 1)]);
    await first;
    expect([rooms.get(ROOM)?.last_seq, rooms.get(ROOM)?.unread]).toEqual([3, 3]);
  });

  it('a reply answers a request, and a new message takes a room out of the archive', () => {
    const received = { ...summary(ROOM, 'dave', 1, 1), request: 'received' as const, archived: true };
    const mine = { ...message(ROOM, 2), sender: 'carol' };
    const room = fromList([received], [{ type: 'message', message: mine }], 'carol').get(ROOM)!;
    expect([room.request, room.archived]).toEqual([null, false]);
    const sent = { ...summary(NEW_ROOM, 'dave', 1, 0), request: 'sent' as const };
    expect(fromList([sent], [{ type: 'message', message: { ...message(NEW_ROOM, 2), sender: 'carol' } }], 'carol').get(NEW_ROOM)!.request).toBe('sent');
    expect(fromList([sent], [{ type: 'message', message: message(NEW_ROOM, 2) }], 'carol').get(NEW_ROOM)!.request).toBeNull();
  });
});
