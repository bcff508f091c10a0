import { useEffect, useState } from 'preact/hooks';
import type { ChatClient, RoomSummary } from '../../client-sdk/index.ts';
import { activity, inboxSync } from './inbox-state.ts';

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
    const onEvent = inboxSync(
      me,
      // Every room: requests and the rest are told apart here, by each room's `request`.
      async () => (await chat.rooms.list.query({ limit: 100, filter: 'all' })).items,
      (next) => !stale && setRooms(next),
    );
    // A failed re-read leaves the inbox as it was; the reconnect that follows a failure re-reads.
    const sub = chat.rooms.onEvent.subscribe(undefined, { onData: (e) => void onEvent(e).catch(() => {}) });
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

  /** Accept or decline a request; the room moves (or goes) at once, without waiting for a re-read. */
  async function answer(r: RoomSummary, accept: boolean) {
    const { status } = accept ? await chat.rooms.accept.mutate({ roomId: r.id }) : await chat.rooms.decline.mutate({ roomId: r.id });
    setRooms((all) => new Map(all).set(r.id, { ...r, request: status === 'accepted' ? null : 'declined' }));
    if (!accept && r.id === openRoom) onOpen('');
  }

  const sorted = [...rooms.values()].sort((a, b) => activity(b).localeCompare(activity(a)));
  const requests = sorted.filter((r) => r.request === 'received');
  const conversations = sorted.filter((r) => r.request !== 'received' && r.request !== 'declined' && !r.archived);
  const row = (r: RoomSummary) => (
    <li key={r.id} class={r.id === openRoom ? 'active' : ''} data-testid={`room-${r.other.user}`} onClick={() => onOpen(r.id)}>
      <span class={`dot ${r.other.online ? 'online' : ''}`} data-testid="presence" title={r.other.online ? 'online' : 'offline'} />
      <span class="who">{r.other.user}</span>
      {r.unread > 0 && r.id !== openRoom && (
        <span class="badge" data-testid="unread">
          {r.unread}
        </span>
      )}
      <span class="last">{r.last_message ? (r.last_message.deleted_at ? 'message deleted' : r.last_message.content) : 'no messages yet'}</span>
      {r.request === 'received' && (
        <span class="answer" onClick={(e) => e.stopPropagation()}>
          <button onClick={() => void answer(r, true)}>Accept</button>
          <button onClick={() => void answer(r, false)}>Decline</button>
        </span>
      )}
    </li>
  );
  return (
    <nav class="inbox">
      <form onSubmit={start}>
        <input name="other" placeholder="Chat with…" value={other} onInput={(e) => setOther(e.currentTarget.value)} />
        <button type="submit">Open</button>
      </form>
      {requests.length > 0 && (
        <section data-testid="requests">
          <h2>Message requests</h2>
          <ul>{requests.map(row)}</ul>
        </section>
      )}
      <ul data-testid="conversations">{conversations.map(row)}</ul>
    </nav>
  );
}
