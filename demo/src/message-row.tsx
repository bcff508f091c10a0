import { useState } from 'preact/hooks';
import { parleyCodeOf, type ChatClient, type Message } from '../../client-sdk/index.ts';

interface Props {
  chat: ChatClient;
  message: Message;
  mine: boolean;
  /** The other participant's read marker has reached this, the caller's latest message. */
  seen: boolean;
  onError(text: string): void;
}

const REFUSALS: Record<string, string> = {
  EDIT_WINDOW_CLOSED: 'Too late to edit this message.',
  MESSAGE_DELETED: 'That message was deleted.',
  FORBIDDEN: 'Only the sender can change a message.',
};

export function MessageRow({ chat, message: m, mine, seen, onError }: Props) {
  const [editing, setEditing] = useState<string | null>(null);
  const refuse = (err: unknown) => onError(REFUSALS[parleyCodeOf(err) ?? ''] ?? `Failed (${parleyCodeOf(err) ?? 'network'})`);

  async function save(e: Event) {
    e.preventDefault();
    if (editing === null || !editing.trim()) return;
    await chat.messages.edit.mutate({ roomId: m.chat_room, messageId: m.id, content: editing.trim() }).then(() => setEditing(null), refuse);
  }

  if (editing !== null) {
    return (
      <form class="msg mine editing" onSubmit={save}>
        <input name="edit" value={editing} onInput={(e) => setEditing(e.currentTarget.value)} autoFocus />
        <button type="submit">Save</button>
        <button type="button" onClick={() => setEditing(null)}>
          Cancel
        </button>
      </form>
    );
  }
  return (
    <div class={`msg ${mine ? 'mine' : 'theirs'} ${m.deleted_at ? 'deleted' : ''}`} data-testid="message" data-seq={m.seq}>
      <span class="content">{m.deleted_at ? 'This message was deleted' : m.content}</span>
      {m.edited_at && !m.deleted_at && <small class="edited"> (edited)</small>}
      {mine && !m.deleted_at && (
        <span class="actions">
          <button onClick={() => setEditing(m.content)} aria-label="Edit">
            Edit
          </button>
          <button onClick={() => void chat.messages.delete.mutate({ roomId: m.chat_room, messageId: m.id }).catch(refuse)} aria-label="Delete">
            Delete
          </button>
        </span>
      )}
      {seen && (
        <small class="seen" data-testid="seen">
          Seen
        </small>
      )}
    </div>
  );
}
