import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { parleyCodeOf, type ChatClient, type Message, type PendingMessage } from '../../client-sdk/index.ts';
import { MAX_ATTACHMENTS_PER_MESSAGE } from '../../contracts/attachment.ts';
import { MessageRow } from './message-row.tsx';
import { uploadFile } from './attachments.ts';

interface Props {
  chat: ChatClient;
  me: string;
  roomId: string;
  /** The server's edit window in ms; undefined while unknown. */
  editWindowMs: number | undefined;
}

const PAGE = 30;
const SEND_REFUSALS: Record<string, string> = {
  BLOCKED: 'Not sent: you cannot send messages in this conversation.',
  CONTENT_REJECTED: 'Not sent: the message was not accepted.',
};
const TYPING_SHOWN_MS = 3_000;

/** Messages by seq: history pages, live events and edits all land in one sorted list. */
function merge(list: Message[], incoming: Message[]): Message[] {
  const bySeq = new Map(list.map((m) => [m.seq, m]));
  for (const m of incoming) bySeq.set(m.seq, m);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

/** A read marker implies delivery: Seen past it, Delivered past the delivered marker, else Sent. */
const receiptOf = (seq: number, delivered: number, read: number) => (seq <= read ? 'seen' : seq <= delivered ? 'delivered' : 'sent');

export function ChatPane({ chat, me, roomId, editWindowMs }: Props) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [older, setOlder] = useState<number | null>(null);
  const [typing, setTyping] = useState<string | null>(null);
  const [otherRead, setOtherRead] = useState(0);
  const [otherDelivered, setOtherDelivered] = useState(0);
  const [pending, setPending] = useState<readonly PendingMessage[]>([]);
  const [draft, setDraft] = useState('');
  const [files, setFiles] = useState<File[]>([]);
  const [uploading, setUploading] = useState(false);
  const [error, setError] = useState('');
  const [other, setOther] = useState<string | null>(null);
  const [blocked, setBlocked] = useState(false);
  const list = useRef<HTMLDivElement>(null);
  const keepBottom = useRef(true);
  const lastTyped = useRef(0);
  const newest = messages.at(-1)?.seq ?? 0;

  // History first, then the subscription from where that page ends: nothing missed, nothing twice.
  useEffect(() => {
    let sub: { unsubscribe(): void } | undefined;
    let closed = false;
    let typingTimer: ReturnType<typeof setTimeout> | undefined;
    void (async () => {
      const [page, rooms, blocks] = await Promise.all([
        chat.messages.list.query({ roomId, direction: 'backward', limit: PAGE }),
        chat.rooms.list.query({ limit: 100, filter: 'all' }),
        chat.users.listBlocked.query({ limit: 500 }),
      ]);
      if (closed) return;
      setMessages(page.items);
      setOlder(page.nextCursor);
      const room = rooms.items.find((r) => r.id === roomId);
      setOtherRead(room?.other_read_seq ?? 0);
      setOther(room?.other.user ?? null);
      setBlocked(blocks.items.some((b) => b.user === room?.other.user));
      setOtherDelivered(room?.other_delivered_seq ?? 0);
      sub = chat.messages.onEvent.subscribe(
        { roomId, lastEventId: page.lastEventId },
        {
          onData: ({ data: e }) => {
            if (e.type === 'message' || e.type === 'message_updated' || e.type === 'message_deleted') setMessages((list) => merge(list, [e.message]));
            if (e.type === 'message' && e.message.sender !== me) setTyping(null);
            if (e.type === 'read' && e.user !== me) setOtherRead((seq) => Math.max(seq, e.seq));
            if (e.type === 'delivered' && e.user !== me) setOtherDelivered((seq) => Math.max(seq, e.seq));
            if (e.type === 'typing' && e.user !== me) {
              setTyping(e.user);
              clearTimeout(typingTimer);
              typingTimer = setTimeout(() => setTyping(null), TYPING_SHOWN_MS);
            }
          },
        },
      );
    })().catch((err: unknown) => setError(String(err)));
    const unsubscribeOutbox = chat.outbox.subscribe((all) => setPending(all.filter((p) => p.roomId === roomId)));
    return () => {
      closed = true;
      clearTimeout(typingTimer);
      sub?.unsubscribe();
      unsubscribeOutbox();
    };
  }, [chat, roomId, me]);

  // An open pane has been read: the marker follows the newest message shown (the SDK spaces the calls).
  useEffect(() => {
    if (newest > 0) void chat.reads.mark(roomId, newest).catch(() => {});
  }, [chat, roomId, newest]);

  // Keeps the view at the bottom for new messages, and in place when older ones are prepended.
  const heightBefore = useRef(0);
  useLayoutEffect(() => {
    const el = list.current;
    if (!el) return;
    if (keepBottom.current) el.scrollTop = el.scrollHeight;
    else if (heightBefore.current) el.scrollTop += el.scrollHeight - heightBefore.current;
    heightBefore.current = 0;
  }, [messages, pending]);

  async function loadOlder() {
    if (older === null || heightBefore.current) return;
    heightBefore.current = list.current!.scrollHeight;
    keepBottom.current = false;
    const page = await chat.messages.list.query({ roomId, direction: 'backward', cursor: older, limit: PAGE });
    setOlder(page.nextCursor);
    setMessages((list) => merge(list, page.items));
  }

  function onScroll() {
    const el = list.current!;
    keepBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    if (el.scrollTop < 40) void loadOlder();
  }

  function onInput(value: string) {
    setDraft(value);
    if (Date.now() - lastTyped.current > 1_000) {
      lastTyped.current = Date.now();
      void chat.messages.typing.mutate({ roomId }).catch(() => {});
    }
  }

  /** Files go the picker's way: added to the message, uploaded at Send. */
  const attach = (picked: File[]) => setFiles((all) => [...all, ...picked].slice(0, MAX_ATTACHMENTS_PER_MESSAGE));

  /** A pasted image (a screenshot, a copied picture) attaches; pasted text stays the browser's to insert. */
  function onPaste(e: ClipboardEvent) {
    const pasted = [...(e.clipboardData?.files ?? [])];
    if (!pasted.length) return;
    e.preventDefault();
    attach(pasted);
  }

  async function sendFiles(content: string) {
    setUploading(true);
    try {
      const attachmentIds = await Promise.all(files.map((f) => uploadFile(chat, roomId, f)));
      const sent = await chat.messages.send.mutate({ roomId, content, attachmentIds });
      setMessages((list) => merge(list, [sent]));
      setFiles([]);
      setDraft('');
    } catch (err) {
      setError(`Not sent (${parleyCodeOf(err) ?? String(err)})`);
    } finally {
      setUploading(false);
    }
  }

  function send(e: Event) {
    e.preventDefault();
    const content = draft.trim();
    // Files go straight to storage, then one send names them; plain text goes through the outbox.
    if (files.length) return void sendFiles(content);
    if (!content) return;
    setDraft('');
    keepBottom.current = true;
    chat.outbox.send(roomId, content).catch((err: unknown) => setError(SEND_REFUSALS[parleyCodeOf(err) ?? ''] ?? `Not sent (${parleyCodeOf(err) ?? 'network'})`));
  }

  async function toggleBlock() {
    if (!other) return;
    if (blocked) await chat.users.unblock.mutate({ userId: other });
    else await chat.users.block.mutate({ userId: other });
    setBlocked(!blocked);
  }

  const lastOwn = messages.filter((m) => m.sender === me && !m.deleted_at).at(-1);
  return (
    <main class="chat">
      {other && (
        <div class="chat-header">
          <b>{other}</b>
          <button onClick={() => void toggleBlock().catch((err: unknown) => setError(`Failed (${parleyCodeOf(err) ?? 'network'})`))}>{blocked ? 'Unblock' : 'Block'}</button>
        </div>
      )}
      <div class="messages" ref={list} onScroll={onScroll} data-testid="messages">
        {older !== null && <button class="older" onClick={() => void loadOlder()}>Load older</button>}
        {messages.map((m) => (
          <MessageRow key={m.seq} chat={chat} message={m} mine={m.sender === me} receipt={m === lastOwn ? receiptOf(m.seq, otherDelivered, otherRead) : undefined} editWindowMs={editWindowMs} onError={setError} />
        ))}
        {pending.map((p) => (
          <div key={p.clientId} class="msg mine pending" data-testid="pending">
            {p.content} <small>{p.status === 'sending' ? 'sending…' : 'waiting for the server…'}</small>
          </div>
        ))}
      </div>
      <div class="typing" data-testid="typing">{typing ? `${typing} is typing…` : ''}</div>
      {error && (
        <p class="error" onClick={() => setError('')}>
          {error}
        </p>
      )}
      <form class="compose" onSubmit={send}>
        <label class="attach" title="Attach files">
          📎{files.length > 0 && <small data-testid="attached">{files.length}</small>}
          <input type="file" multiple hidden data-testid="file-picker" onChange={(e) => attach([...(e.currentTarget.files ?? [])])} />
        </label>
        <input name="message" placeholder="Message" value={draft} onInput={(e) => onInput(e.currentTarget.value)} onPaste={onPaste} autoComplete="off" />
        <button type="submit" disabled={uploading}>
          Send
        </button>
      </form>
    </main>
  );
}
