import { useEffect, useMemo, useState } from 'preact/hooks';
import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { ChatPane } from './chat-pane.tsx';
import { ConnectionBanner } from './connection-banner.tsx';
import { fetchEditWindowMs } from './edit-window.ts';
import { Inbox } from './inbox.tsx';
import { disableNotifications, NotificationsButton, useRoomFromNotifications } from './notifications.tsx';
import { ReportsPanel } from './reports-panel.tsx';
import { devToken, looksAdmin, savedSession, saveSession, subjectOf, type Session } from './sign-in.ts';

export function App() {
  const [session, setSession] = useState<Session | null>(savedSession);
  if (!session) return <SignIn onSignedIn={(s) => (saveSession(s), setSession(s))} />;
  return <Signed session={session} onSignOut={() => (saveSession(null), setSession(null))} />;
}

function SignIn({ onSignedIn }: { onSignedIn(s: Session): void }) {
  const [name, setName] = useState('');
  const [askToken, setAskToken] = useState(false);
  const [admin, setAdmin] = useState(false);
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  async function submit(e: Event) {
    e.preventDefault();
    setError('');
    try {
      if (askToken) return onSignedIn({ user: subjectOf(token.trim()), token: token.trim(), admin: looksAdmin(token.trim()) });
      const minted = await devToken(name.trim(), admin);
      if (minted) onSignedIn({ user: name.trim(), token: minted, admin });
      else setAskToken(true);
    } catch (err) {
      setError(String((err as Error).message));
    }
  }
  return (
    <form class="sign-in" onSubmit={submit}>
      <h1>Parley</h1>
      {askToken ? (
        <>
          <p>This server checks real credentials: paste a JWT for your user.</p>
          <textarea name="token" value={token} onInput={(e) => setToken(e.currentTarget.value)} rows={4} />
        </>
      ) : (
        <>
          <input name="user" placeholder="Your name" value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />
          <label>
            <input type="checkbox" name="admin" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} /> Admin (development only)
          </label>
        </>
      )}
      <button type="submit">Sign in</button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}

function Signed({ session, onSignOut }: { session: Session; onSignOut(): void }) {
  const chat: ChatClient = useMemo(() => createChatClient({ url: location.origin, token: session.token, retryDelayMs: (n) => Math.min(200 * 2 ** n, 2_000) }), [session.token]);
  useEffect(() => () => void chat.close(), [chat]);
  const [openRoom, setOpenRoom] = useState<string | null>(null);
  const [showReports, setShowReports] = useState(false);
  useRoomFromNotifications((id) => (setShowReports(false), setOpenRoom(id)));
  const [editWindowMs, setEditWindowMs] = useState<number | undefined>(undefined);
  useEffect(() => void fetchEditWindowMs().then(setEditWindowMs), []);
  return (
    <div class="layout">
      <ConnectionBanner chat={chat} />
      <header>
        <span>
          Signed in as <b data-testid="me">{session.user}</b>
        </span>
        <span class="tools">
          <NotificationsButton chat={chat} />
          {session.admin && (
            <button onClick={() => setShowReports(!showReports)} aria-pressed={showReports}>
              Reports
            </button>
          )}
          <button onClick={() => void disableNotifications(chat).finally(onSignOut)}>Sign out</button>
        </span>
      </header>
      <Inbox chat={chat} me={session.user} openRoom={openRoom} onOpen={(id) => (setShowReports(false), setOpenRoom(id || null))} />
      {showReports ? <ReportsPanel chat={chat} /> : openRoom ? <ChatPane key={openRoom} chat={chat} me={session.user} roomId={openRoom} editWindowMs={editWindowMs} /> : <main class="empty">Pick a conversation, or start one.</main>}
    </div>
  );
}
