import { useEffect, useState } from 'preact/hooks';
import { parleyCodeOf, REPORT_REASONS, type ChatClient, type Message, type ReportReason } from '../../client-sdk/index.ts';
import { editTimeLeftMs, shortTime } from './edit-window.ts';

interface Props {
  chat: ChatClient;
  message: Message;
  mine: boolean;
  /** On the caller's latest message: how far it got (the other's delivered and read markers). */
  receipt?: 'sent' | 'delivered' | 'seen' | undefined;
  /** The server's edit window in ms; undefined while unknown. */
  editWindowMs: number | undefined;
  onError(text: string): void;
}

/** setTimeout's longest delay; a window longer than that outlives the page anyway. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Whether the edit window of a message created at `createdAt` is still open; turns false when it closes. */
function useEditable(createdAt: string, windowMs: number | undefined): boolean {
  const [open, setOpen] = useState(() => editTimeLeftMs(createdAt, windowMs, Date.now()) > 0);
  useEffect(() => {
    const left = editTimeLeftMs(createdAt, windowMs, Date.now());
    setOpen(left > 0);
    if (left <= 0 || left > MAX_TIMER_MS) return;
    const timer = setTimeout(() => setOpen(false), left);
    return () => clearTimeout(timer);
  }, [createdAt, windowMs]);
  return open;
}

const RECEIPTS = { sent: '✓ Sent', delivered: '✓✓ Delivered', seen: 'Seen' } as const;

const REFUSALS: Record<string, string> = {
  EDIT_WINDOW_CLOSED: 'Too late to edit this message.',
  MESSAGE_DELETED: 'That message was deleted.',
  FORBIDDEN: 'Only the sender can change a message.',
};

export function MessageRow({ chat, message: m, mine, receipt, editWindowMs, onError }: Props) {
  const [editing, setEditing] = useState<string | null>(null);
  const [reporting, setReporting] = useState<ReportReason | null>(null);
  const [reported, setReported] = useState(false);
  const editable = useEditable(m.created_at, editWindowMs);
  const refuse = (err: unknown) => onError(REFUSALS[parleyCodeOf(err) ?? ''] ?? `Failed (${parleyCodeOf(err) ?? 'network'})`);

  async function save(e: Event) {
    e.preventDefault();
    if (editing === null || !editing.trim()) return;
    await chat.messages.edit.mutate({ roomId: m.chat_room, messageId: m.id, content: editing.trim() }).then(() => setEditing(null), refuse);
  }

  async function report(e: Event) {
    e.preventDefault();
    if (reporting === null) return;
    await chat.reports.create.mutate({ roomId: m.chat_room, messageId: m.id, reason: reporting }).then(() => (setReporting(null), setReported(true)), refuse);
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
      <time class="time" dateTime={m.created_at} title={new Date(m.created_at).toLocaleString()}>
        {shortTime(m.created_at)}
      </time>
      <span class="content">{m.deleted_at ? 'This message was deleted' : m.content}</span>
      {m.attachments && (
        <span class="attachments">
          {m.attachments.map((a) =>
            a.contentType.startsWith('image/') ? (
              <a key={a.id} href={a.url} target="_blank" rel="noreferrer" data-testid="attachment">
                <img src={a.thumbnailUrl ?? a.url} alt={a.name} width={a.width && Math.min(a.width, 240)} loading="lazy" />
              </a>
            ) : (
              <a key={a.id} href={a.url} download={a.name} data-testid="attachment">
                📄 {a.name} <small>({Math.ceil(a.size / 1024)} KB)</small>
              </a>
            ),
          )}
        </span>
      )}
      {m.edited_at && !m.deleted_at && <small class="edited"> (edited)</small>}
      {mine && !m.deleted_at && (
        <span class="actions">
          {editable && (
            <button onClick={() => setEditing(m.content)} aria-label="Edit">
              Edit
            </button>
          )}
          <button onClick={() => void chat.messages.delete.mutate({ roomId: m.chat_room, messageId: m.id }).catch(refuse)} aria-label="Delete">
            Delete
          </button>
        </span>
      )}
      {!mine && !m.deleted_at && !reported && reporting === null && (
        <span class="actions">
          <button onClick={() => setReporting('spam')} aria-label="Report">
            Report
          </button>
        </span>
      )}
      {reporting !== null && (
        <form class="report" onSubmit={report}>
          <select name="reason" value={reporting} onChange={(e) => setReporting(e.currentTarget.value as ReportReason)}>
            {REPORT_REASONS.map((r) => (
              <option key={r} value={r}>
                {r.replace('_', ' ')}
              </option>
            ))}
          </select>
          <button type="submit">Send report</button>
          <button type="button" onClick={() => setReporting(null)}>
            Cancel
          </button>
        </form>
      )}
      {reported && (
        <small class="seen" data-testid="reported">
          Reported
        </small>
      )}
      {receipt && (
        <small class={`receipt ${receipt}`} data-testid={receipt === 'seen' ? 'seen' : 'receipt'} data-receipt={receipt}>
          {RECEIPTS[receipt]}
        </small>
      )}
    </div>
  );
}
