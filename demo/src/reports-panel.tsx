import { useEffect, useState } from 'preact/hooks';
import { parleyCodeOf, type ChatClient, type RouterOutputs } from '../../client-sdk/index.ts';
import { shortTime } from './edit-window.ts';

type AdminReport = RouterOutputs['admin']['reports']['list']['items'][number];
type Action = 'dismiss' | 'delete_message' | 'ban_user';

/** The admin API has no live stream of reports: the open ones are read again this often while the panel shows. */
const REFRESH_MS = 5_000;

const ACTIONS: Array<[Action, string]> = [
  ['dismiss', 'Dismiss'],
  ['delete_message', 'Delete message'],
  ['ban_user', 'Ban user'],
];

/** Open reports, oldest first, each resolved with one click (`admin.reports.resolve`). */
export function ReportsPanel({ chat }: { chat: ChatClient }) {
  const [reports, setReports] = useState<AdminReport[] | null>(null);
  const [error, setError] = useState('');

  const load = async () => {
    try {
      setReports((await chat.admin.reports.list.query({ status: 'open', limit: 100 })).items);
      setError('');
    } catch (err) {
      setError(`Could not list reports (${parleyCodeOf(err) ?? 'network'})`);
    }
  };
  useEffect(() => {
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => clearInterval(timer);
  }, [chat]);

  async function resolve(report: AdminReport, action: Action) {
    try {
      await chat.admin.reports.resolve.mutate({ reportId: report.id, action });
      // Gone at once; the next read confirms (a report another admin resolved meanwhile goes too).
      setReports((all) => all?.filter((r) => r.id !== report.id) ?? null);
      void load();
    } catch (err) {
      setError(`Not resolved (${parleyCodeOf(err) ?? 'network'})`);
    }
  }

  return (
    <main class="reports" data-testid="reports">
      <div class="chat-header">
        <b>Open reports</b>
        <button onClick={() => void load()}>Refresh</button>
      </div>
      {error && <p class="error">{error}</p>}
      {reports?.length === 0 && <p class="empty-note">No open reports.</p>}
      <ul>
        {reports?.map((r) => (
          <li key={r.id} data-testid="report">
            <div>
              <b>{r.reporter}</b> reported <b data-testid="reported-user">{r.reported_user}</b> for <i>{r.reason.replace('_', ' ')}</i> <time dateTime={r.created_at}>{shortTime(r.created_at)}</time>
            </div>
            {r.message ? <blockquote data-testid="reported-message">{r.message.content}</blockquote> : <p class="empty-note">The whole conversation</p>}
            {r.note && <p class="note">{r.note}</p>}
            <span class="answer">
              {ACTIONS.filter(([a]) => a !== 'delete_message' || r.message_id).map(([action, label]) => (
                <button key={action} onClick={() => void resolve(r, action)}>
                  {label}
                </button>
              ))}
            </span>
          </li>
        ))}
      </ul>
    </main>
  );
}
