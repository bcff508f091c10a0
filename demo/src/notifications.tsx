import { useEffect, useState } from 'preact/hooks';
import { parleyCodeOf, type ChatClient } from '../../client-sdk/index.ts';

/** The worker's URL and scope: the demo's own path, so it never sees the API's requests. */
const WORKER = '/demo/sw.js';
const SCOPE = '/demo/';

type State = 'off' | 'working' | 'on' | 'denied' | 'unsupported' | 'push-off' | 'failed';
const LABELS: Record<Exclude<State, 'off'>, string> = {
  working: 'Enabling…',
  on: 'Notifications on',
  denied: 'Notifications blocked by the browser',
  unsupported: 'This browser has no Web Push',
  'push-off': 'Push is off on this server',
  failed: 'Notifications failed',
};

const supported = () => 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;

/**
 * Permission, then the worker, then a subscription for the server's VAPID key, handed to
 * `push.subscribe`. The server pushes only while the user has no open socket, so a notification
 * comes when every demo tab is closed or asleep.
 */
export async function enableNotifications(chat: ChatClient): Promise<void> {
  if ((await Notification.requestPermission()) !== 'granted') throw new Error('denied');
  const { publicKey } = await chat.push.vapidPublicKey.query();
  await navigator.serviceWorker.register(WORKER, { scope: SCOPE });
  const registration = await navigator.serviceWorker.ready;
  const subscription = (await registration.pushManager.getSubscription()) ?? (await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: publicKey }));
  const { endpoint, keys } = subscription.toJSON();
  if (!endpoint || !keys?.p256dh || !keys.auth) throw new Error('the browser gave a subscription without keys');
  await chat.push.subscribe.mutate({ endpoint, keys: { p256dh: keys.p256dh, auth: keys.auth }, userAgent: navigator.userAgent.slice(0, 512) });
}

/** On sign-out: this browser stops getting the user's notifications (another user may sign in next). */
export async function disableNotifications(chat: ChatClient): Promise<void> {
  if (!supported()) return;
  const subscription = await (await navigator.serviceWorker.getRegistration(SCOPE))?.pushManager.getSubscription();
  if (!subscription) return;
  await chat.push.unsubscribe.mutate({ endpoint: subscription.endpoint }).catch(() => {});
  await subscription.unsubscribe();
}

export function NotificationsButton({ chat }: { chat: ChatClient }) {
  const [state, setState] = useState<State>(() => (!supported() ? 'unsupported' : Notification.permission === 'denied' ? 'denied' : 'off'));
  const [detail, setDetail] = useState('');
  useEffect(() => {
    // Already subscribed in this browser: say so rather than offer the button again.
    if (supported()) void navigator.serviceWorker.getRegistration(SCOPE).then(async (r) => (await r?.pushManager.getSubscription()) && setState('on'));
  }, []);
  async function enable() {
    setState('working');
    try {
      await enableNotifications(chat);
      setState('on');
    } catch (err) {
      if ((err as Error).message === 'denied') return setState('denied');
      if (parleyCodeOf(err) === 'NOT_FOUND') return setState('push-off');
      setDetail(String((err as Error).message ?? err));
      setState('failed');
    }
  }
  if (state === 'off') return <button onClick={() => void enable()}>Enable notifications</button>;
  return (
    <small class="notifications" data-testid="notifications" data-state={state} title={detail}>
      {LABELS[state]}
    </small>
  );
}

/** Rooms a notification click asks this page to open: the worker's message, or `?room=` on a fresh tab. */
export function useRoomFromNotifications(open: (roomId: string) => void) {
  useEffect(() => {
    const wanted = new URLSearchParams(location.search).get('room');
    if (wanted) {
      open(wanted);
      history.replaceState(null, '', location.pathname);
    }
    if (!('serviceWorker' in navigator)) return;
    const onMessage = (e: MessageEvent) => {
      const data = e.data as { type?: string; room?: string } | null;
      if (data?.type === 'open-room' && data.room) open(data.room);
    };
    navigator.serviceWorker.addEventListener('message', onMessage);
    return () => navigator.serviceWorker.removeEventListener('message', onMessage);
  }, []);
}
