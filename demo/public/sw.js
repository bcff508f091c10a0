// The demo's service worker: a push becomes a notification, and a click on it opens the demo at
// that room. Plain JavaScript in public/, so it keeps one stable URL (/demo/sw.js, scope /demo/)
// that Vite does not hash; the server sends it with no-cache, so an update is seen at once.

/** @param {{ type: string, tag: string, chat_room: string, unread: number, title: string, body?: string }} p */
function show(p) {
  const unread = p.unread > 1 ? `${p.unread} unread` : '';
  // Without previews (PUSH_PREVIEW=false) there is no body: the unread count is all there is to say.
  const body = [p.body, unread].filter(Boolean).join('\n');
  // One notification per room (the payload's tag), replaced by the room's next one, and still announced.
  return self.registration.showNotification(p.title, { tag: p.tag, body, renotify: true, data: { room: p.chat_room } });
}

self.addEventListener('push', (event) => {
  let payload;
  try {
    payload = event.data?.json();
  } catch {
    return;
  }
  if (payload?.type !== 'message') return;
  event.waitUntil(show(payload));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const room = event.notification.data?.room;
  const url = new URL(room ? `./?room=${encodeURIComponent(room)}` : './', self.registration.scope).href;
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const open = windows.find((w) => w.url.startsWith(self.registration.scope));
      // An open demo switches rooms in place (it keeps its socket and draft); otherwise a new tab.
      if (open) {
        open.postMessage({ type: 'open-room', room });
        return open.focus();
      }
      return self.clients.openWindow(url);
    })(),
  );
});

// Take over pages that are already open, so their first notification click reaches them.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
