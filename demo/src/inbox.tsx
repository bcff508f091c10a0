import { useEffect, useState } from 'preact/hooks';
import type { ChatClient, InboxEvent, RoomSummary } from '../../client-sdk/index.ts';
import { activity, apply, fromList } from './inbox-state.ts';

interface Props {
  chat: ChatClient;
  me: string;
  openRoom: string | null;
  onOpen(roomId: string): void;
}

export function Inbox({ chat, me, openRoom, onOpen }: Props) {
  const [rooms, setRooms] = useState(new Map<string, RoomSummary>());
  const [other, setOther] = useState('');

  useEffect(() => {
    let stale = false;
    /** Events since the last `ready`, while its re-read of rooms.list is in flight. */
    let since: InboxEvent[] | null = null;
    const sub = chat.rooms.onEvent.subscribe(undefined, {
      onData: async (e) => {
        if (e.type !== 'ready') {
          since?.push(e);
          return setRooms((rooms) => apply(rooms, e, me));
        }
        // Listening to every room now: a fresh read plus the events that follow is exact.
        const mine: InboxEvent[] = (since = []);
        const page = await chat.rooms.list.query({ limit: 100 });
        if (since === mine) since = null;
        if (!stale) setRooms(fromList(page.items, mine, me));
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
