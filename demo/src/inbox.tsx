import { useEffect, useState } from 'preact/hooks';
import type { ChatClient, InboxEvent, RoomSummary } from '../../client-sdk/index.ts';

interface Props {
  chat: ChatClient;
  me: string;
  openRoom: string | null;
  onOpen(roomId: string): void;
}

const activity = (r: RoomSummary) => r.last_message?.created_at ?? '';

/** Applies one inbox event to the rooms; unread stays exact because `rooms.list` is re-read on every `ready`. */
function apply(rooms: Map<string, RoomSummary>, e: InboxEvent, me: string): Map<string, RoomSummary> {
  const next = new Map(rooms);
  const room = (id: string) => next.get(id);
  if (e.type === 'room_created') next.set(e.room.id, e.room);
  else if (e.type === 'message') {
    const r = room(e.message.chat_room);
    if (r && e.message.seq > r.last_seq) {
      next.set(r.id, { ...r, last_seq: e.message.seq, last_message: e.message, unread: r.unread + (e.message.sender === me ? 0 : 1) });
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

export function Inbox({ chat, me, openRoom, onOpen }: Props) {
  const [rooms, setRooms] = useState(new Map<string, RoomSummary>());
  const [other, setOther] = useState('');

  useEffect(() => {
    let stale = false;
    const sub = chat.rooms.onEvent.subscribe(undefined, {
      onData: async (e) => {
        if (e.type !== 'ready') return setRooms((rooms) => apply(rooms, e, me));
        // Listening to every room now: a fresh read plus the events that follow is exact.
        const page = await chat.rooms.list.query({ limit: 100 });
        if (!stale) setRooms(new Map(page.items.map((r) => [r.id, r])));
      },
    });
    return () => {
      stale = true;
      sub.unsubscribe();
    };
  }, [chat, me]);

  async function start(e: Event) {
    e.preventDefault();
    if (!other.trim()) return;
    const room = await chat.rooms.open.mutate({ otherUserId: other.trim() });
    setOther('');
    onOpen(room.id);
  }

  const sorted = [...rooms.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  return (
    <nav class="inbox">
      <form onSubmit={start}>
        <input name="other" placeholder="Chat with…" value={other} onInput={(e) => setOther(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      <ul>
        {sorted.map((r) => (
          <li key={r.id} class={r.id === openRoom ? 'active' : ''} data-testid={`room-${r.other.user}`} onClick={() => onOpen(r.id)}>
            <span class={`dot ${r.other.online ? 'online' : ''}`} data-testid="presence" title={r.other.online ? 'online' : 'offline'} />
            <span class="who">{r.other.user}</span>
            {r.unread > 0 && r.id !== openRoom && (
              <span class="badge" data-testid="unread">
                {r.unread}
              </span>
            )}
            <span class="last">{r.last_message ? (r.last_message.deleted_at ? 'message deleted' : r.last_message.content) : 'no messages yet'}</span>
          </li>
        ))}
      </ul>
    </nav>
  );
}
