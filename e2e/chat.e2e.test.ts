import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { startFakePushService } from '../tests/support/push-service.ts';
import { startRestartableServer, type RestartableServer } from '../tests/support/restartable-server.ts';

// Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing).
const executablePath = process.env.CHROMIUM_PATH ?? ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const SCREENSHOT = new URL('../docs/demo.png', import.meta.url).pathname;

let server: RestartableServer;
let browser: Browser;
beforeAll(async () => {
  if (!executablePath) throw new Error('Chromium not found: apt-get install -y chromium (or set CHROMIUM_PATH)');
  // Unlimited sends: the scroll-back test seeds 70 messages through the API faster than a person types.
  // Loopback push endpoints: the notifications test hands the server a fake push service's.
  server = await startRestartableServer('e2e_chat', { SEND_RATE_PER_SEC: '0', PUSH: 'on', PUSH_ALLOW_LOCAL_ENDPOINTS: 'true' });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/**
 * A page signed in as `name`; with `fakeClock`, its timers and Date are Playwright's, to jump ahead
 * with `page.clock`; `admin` ticks the sign-in's admin box; `prepare` sees the context before the page opens.
 */
async function signIn(name: string, { fakeClock = false, admin = false, prepare }: { fakeClock?: boolean; admin?: boolean; prepare?: (c: BrowserContext) => Promise<void> } = {}): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 900, height: 600 } });
  if (fakeClock) await context.clock.install();
  await prepare?.(context);
  const page = await context.newPage();
  await page.goto(`${server.url}/demo/`);
  await page.getByPlaceholder('Your name').fill(name);
  if (admin) await page.getByLabel('Admin (development only)').check();
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('me').filter({ hasText: name }).waitFor();
  return page;
}

/** A token from the dev-only sign-in route, for clients outside the browser. */
const tokenFor = async (user: string) =>
  ((await (await fetch(`${server.url}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user }) })).json()) as { token: string }).token;
const texts = (page: Page) => page.getByTestId('message').locator('.content').allTextContents();
const send = async (page: Page, text: string) => {
  await page.getByPlaceholder('Message').fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
};

it('alice and bob chat: unread, seen, typing, edit, delete, reload, and a server restart with a banner and no gap', async () => {
  const alice = await signIn('alice');
  const bob = await signIn('bob');

  // Alice opens a chat with bob; it appears in bob's inbox live, with alice shown online.
  await alice.getByPlaceholder('Chat with…').fill('bob');
  await alice.getByRole('button', { name: 'Open' }).click();
  const aliceInBob = bob.getByTestId('room-alice');
  await aliceInBob.waitFor();
  await expect.poll(() => aliceInBob.getByTestId('presence').getAttribute('class')).toContain('online');

  // Unread: bob's badge counts alice's messages, then clears when he opens the room; once he has
  // accepted alice's request, alice sees "Seen".
  for (const text of ['hi bob', 'are you there?', 'third']) await send(alice, text);
  await expect.poll(() => aliceInBob.getByTestId('unread').textContent()).toBe('3');
  await expect.poll(() => alice.getByTestId('seen').count()).toBe(0);
  await bob.getByTestId('requests').getByTestId('room-alice').getByRole('button', { name: 'Accept' }).click();
  await bob.getByTestId('conversations').getByTestId('room-alice').waitFor();
  await aliceInBob.click();
  await expect.poll(() => texts(bob)).toEqual(['hi bob', 'are you there?', 'third']);
  await expect.poll(() => aliceInBob.getByTestId('unread').count()).toBe(0);
  await alice.getByTestId('seen').waitFor();

  // Typing shows on the other side.
  await bob.getByPlaceholder('Message').pressSequentially('hello al');
  await expect.poll(() => alice.getByTestId('typing').textContent()).toBe('bob is typing…');
  await bob.getByRole('button', { name: 'Send' }).click();
  await expect.poll(() => texts(alice)).toEqual(['hi bob', 'are you there?', 'third', 'hello al']);

  // Edit and delete show live on bob's side.
  const aliceMessage = (text: string) => alice.getByTestId('message').filter({ hasText: text });
  await aliceMessage('are you there?').getByRole('button', { name: 'Edit' }).click();
  await alice.locator('input[name="edit"]').fill('are you there, bob?');
  await alice.getByRole('button', { name: 'Save' }).click();
  await aliceMessage('third').getByRole('button', { name: 'Delete' }).click();
  await expect.poll(() => texts(bob)).toEqual(['hi bob', 'are you there, bob?', 'This message was deleted', 'hello al']);
  await bob.getByTestId('message').filter({ hasText: 'are you there, bob?' }).getByText('(edited)').waitFor();

  // A reload keeps the history (and the sign-in, for this tab).
  await bob.reload();
  await bob.getByTestId('room-alice').click();
  await expect.poll(() => texts(bob)).toEqual(['hi bob', 'are you there, bob?', 'This message was deleted', 'hello al']);

  // Server restart: both see the banner; a message sent meanwhile waits, then arrives once, in order.
  await server.stop();
  await bob.getByTestId('reconnecting').waitFor();
  await alice.getByTestId('reconnecting').waitFor();
  await send(alice, 'sent while you were away');
  await alice.getByTestId('pending').waitFor();
  await server.start();
  // At once, before the pages are back: a message from alice's other device, which bob's page
  // can only get by resuming from its last event id. Its place among the outbox's is the server's.
  const alicePhone = createChatClient({ url: server.url, token: await tokenFor('alice') });
  const [room] = (await alicePhone.rooms.list.query({ limit: 1 })).items;
  await alicePhone.messages.send.mutate({ roomId: room!.id, content: 'from my phone' });
  await expect.poll(() => bob.getByTestId('reconnecting').count(), { timeout: 20_000 }).toBe(0);
  const stored = async () => (await alicePhone.messages.list.query({ roomId: room!.id, limit: 100 })).items.map((m) => (m.deleted_at ? 'This message was deleted' : m.content));
  await expect.poll(stored, { timeout: 20_000 }).toHaveLength(6);
  // No gap, no duplicate, the server's order: bob's pane shows exactly the stored history.
  const history = await stored();
  await expect.poll(() => texts(bob), { timeout: 20_000 }).toEqual(history);
  expect(history.slice(0, 4)).toEqual(['hi bob', 'are you there, bob?', 'This message was deleted', 'hello al']);
  expect(history.slice(4).sort()).toEqual(['from my phone', 'sent while you were away']);
  await alicePhone.close();
  await send(bob, 'back again');
  await expect.poll(() => texts(alice)).toEqual([...history, 'back again']);
  await expect.poll(() => alice.getByTestId('pending').count()).toBe(0);
  await bob.getByTestId('seen').waitFor();
});

it('requests are listed apart with Accept and Decline; a conversation has Block, a message Report', async () => {
  const hank = await signIn('hank');
  // A stranger writes; hank declines: the request goes, and the stranger can write no more.
  const ivan = createChatClient({ url: server.url, token: await tokenFor('ivan') });
  const spam = await ivan.rooms.open.mutate({ otherUserId: 'hank' });
  await ivan.messages.send.mutate({ roomId: spam.id, content: 'buy now' });
  const ivanRow = hank.getByTestId('requests').getByTestId('room-ivan');
  await ivanRow.waitFor();
  await ivanRow.getByRole('button', { name: 'Decline' }).click();
  await expect.poll(() => hank.getByTestId('room-ivan').count()).toBe(0);
  await expect(ivan.messages.send.mutate({ roomId: spam.id, content: 'buy now!!' })).rejects.toThrow('You cannot send messages in this conversation.');
  await ivan.close();

  // gina writes; hank accepts, reports her message, blocks her, then unblocks.
  const gina = await signIn('gina');
  await gina.getByPlaceholder('Chat with…').fill('hank');
  await gina.getByRole('button', { name: 'Open' }).click();
  await send(gina, 'hello hank');
  const ginaRequest = hank.getByTestId('requests').getByTestId('room-gina');
  await ginaRequest.waitFor();
  await ginaRequest.getByRole('button', { name: 'Accept' }).click();
  await hank.getByTestId('conversations').getByTestId('room-gina').click();
  const row = hank.getByTestId('message').filter({ hasText: 'hello hank' });
  await row.getByRole('button', { name: 'Report' }).click();
  await row.locator('select[name="reason"]').selectOption('harassment');
  await row.getByRole('button', { name: 'Send report' }).click();
  await row.getByTestId('reported').waitFor();
  await hank.getByRole('button', { name: 'Block' }).click();
  await hank.getByRole('button', { name: 'Unblock' }).waitFor();
  await send(gina, 'are you there?');
  await gina.getByText('Not sent: you cannot send messages in this conversation.').waitFor();
  await hank.getByRole('button', { name: 'Unblock' }).click();
  await hank.getByRole('button', { name: 'Block' }).waitFor();
});

it('each message shows the time it was sent, and its Edit button goes when the edit window closes', async () => {
  const erin = await signIn('erin', { fakeClock: true });
  await erin.getByPlaceholder('Chat with…').fill('frank');
  await erin.getByRole('button', { name: 'Open' }).click();
  await send(erin, 'edit me while you can');
  const row = erin.getByTestId('message').filter({ hasText: 'edit me while you can' });
  await row.waitFor();
  expect(await row.locator('time').textContent()).toMatch(/\d{1,2}:\d\d/);
  await row.getByRole('button', { name: 'Edit' }).waitFor();
  // The server's window is MESSAGE_EDIT_WINDOW_SECONDS' default, 15 minutes.
  await erin.clock.fastForward('15:01');
  await expect.poll(() => row.getByRole('button', { name: 'Edit' }).count()).toBe(0);
  await row.getByRole('button', { name: 'Delete' }).waitFor();
});

it('the chat pane opens on the newest page and scrolls back through the whole history', async () => {
  const carol = await signIn('carol');
  // 70 messages from dave, sent through the SDK outside the browser.
  const dave = createChatClient({ url: server.url, token: await tokenFor('dave') });
  const room = await dave.rooms.open.mutate({ otherUserId: 'carol' });
  for (let n = 1; n <= 70; n++) await dave.messages.send.mutate({ roomId: room.id, content: `m${n}` });
  await dave.close();

  await carol.getByTestId('room-dave').click();
  await expect.poll(() => texts(carol)).toEqual(Array.from({ length: 30 }, (_, i) => `m${i + 41}`));
  for (let i = 0; i < 5 && (await texts(carol)).length < 70; i++) {
    // Each scroll to the top loads one older page; wait for it before the next.
    const before = (await texts(carol)).length;
    await carol.getByTestId('messages').evaluate((el) => el.scrollTo(0, 0));
    await expect.poll(async () => (await texts(carol)).length).toBeGreaterThan(before);
  }
  await expect.poll(() => texts(carol)).toEqual(Array.from({ length: 70 }, (_, i) => `m${i + 1}`));
});

it('a picked image goes straight to storage and shows as a thumbnail for both; a text file as a link', async () => {
  const grace = await signIn('grace');
  const heidi = await signIn('heidi');
  await grace.getByPlaceholder('Chat with…').fill('heidi');
  await grace.getByRole('button', { name: 'Open' }).click();
  const sharp = (await import('sharp')).default;
  const png = await sharp({ create: { width: 600, height: 300, channels: 3, background: { r: 20, g: 120, b: 200 } } }).png().toBuffer();
  await grace.getByTestId('file-picker').setInputFiles([
    { name: 'sky.png', mimeType: 'image/png', buffer: png },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('bring snacks\n') },
  ]);
  await send(grace, 'two files');
  await heidi.getByTestId('room-grace').click();
  for (const page of [grace, heidi]) {
    const image = page.getByTestId('attachment').locator('img');
    await image.waitFor();
    // Loaded: the signed URL answered with an image the browser could decode.
    await expect.poll(() => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('attachment').filter({ hasText: 'notes.txt' }).count()).toBe(1);
  }
  expect(await texts(heidi)).toContain('two files');
  const href = await heidi.getByTestId('attachment').filter({ hasText: 'notes.txt' }).getAttribute('href');
  expect(await (await fetch(new URL(href!, server.url))).text()).toBe('bring snacks\n');
});

it('Enable notifications registers the worker and hands push.subscribe the subscription; a push shows one, a click opens its room', async () => {
  const vapid = createChatClient({ url: server.url, token: await tokenFor('kim') });
  const { publicKey } = await vapid.push.vapidPublicKey.query();
  await vapid.close();
  const pushService = await startFakePushService(publicKey);
  try {
    // Chromium's own pushManager.subscribe cannot work here: a test's browser context is off the
    // record, where it refuses ("permission denied"), and a profile on disk waits for Google's push
    // service. So subscribe hands out a device of the fake push service, and keeps its options.
    const device = pushService.device('kim-laptop');
    const kim = await signIn('kim', {
      prepare: async (context) => {
        await context.grantPermissions(['notifications'], { origin: server.url });
        await context.addInitScript((sub) => {
          const w = globalThis as unknown as { PushManager: { prototype: { subscribe(o: unknown): Promise<unknown> } }; pushOptions?: unknown };
          w.PushManager.prototype.subscribe = async (options) => ((w.pushOptions = options), { ...sub, toJSON: () => ({ ...sub, expirationTime: null }) });
        }, device);
      },
    });
    await kim.getByPlaceholder('Chat with…').fill('lee');
    await kim.getByRole('button', { name: 'Open' }).click();
    await kim.getByRole('button', { name: 'Enable notifications' }).click();
    await expect.poll(() => kim.getByTestId('notifications').getAttribute('data-state')).toBe('on');
    expect(await kim.evaluate(() => (globalThis as unknown as { pushOptions: unknown }).pushOptions)).toEqual({ userVisibleOnly: true, applicationServerKey: publicKey });
    const context = kim.context();
    const worker = () => context.serviceWorkers()[0]!;
    await expect.poll(() => context.serviceWorkers().map((w) => w.url())).toEqual([`${server.url}/demo/sw.js`]);
    const sw = await fetch(`${server.url}/demo/sw.js`);
    expect(sw.headers.get('content-type')).toBe('text/javascript; charset=utf-8');

    // Kim leaves (the server pushes only to the offline); lee writes; the push service gets it.
    await kim.goto('about:blank');
    const lee = createChatClient({ url: server.url, token: await tokenFor('lee') });
    const { id: roomId } = await lee.rooms.open.mutate({ otherUserId: 'kim' });
    await lee.messages.send.mutate({ roomId, content: 'ping kim' });
    await lee.close();
    await expect.poll(() => pushService.received.length, { timeout: 30_000 }).toBe(1);
    const { payload } = pushService.received[0]!;
    expect(payload).toMatchObject({ chat_room: roomId, title: 'lee', body: 'ping kim', unread: 1 });

    // That payload, delivered to the worker the way DevTools' Push button does: a real push event.
    await kim.goto(`${server.url}/demo/`);
    await kim.getByTestId('me').waitFor();
    const cdp = await context.newCDPSession(kim);
    const registrationId = await new Promise<string>((resolve) => {
      cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
        const mine = registrations.find((r) => r.scopeURL === `${server.url}/demo/` && !r.isDeleted);
        if (mine) resolve(mine.registrationId);
      });
      void cdp.send('ServiceWorker.enable');
    });
    // The page's worker is active before the push, as a worker a push service wakes would be.
    await kim.evaluate('navigator.serviceWorker.ready.then(() => true)');
    const shown = () => worker().evaluate('self.registration.getNotifications().then((all) => all.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))');
    // DevTools' delivery reports nothing back, and once in several CI runs nothing showed for
    // 15 s: the same push again, a few times (its tag keeps it one notification).
    for (let attempt = 1; ; attempt++) {
      await cdp.send('ServiceWorker.deliverPushMessage', { origin: server.url, registrationId, data: JSON.stringify(payload) });
      const arrived = await expect.poll(async () => (await shown() as unknown[]).length, { timeout: 5_000 }).toBe(1).then(() => true, () => false);
      if (arrived || attempt === 3) break;
    }
    await expect.poll(shown).toEqual([{ title: 'lee', body: 'ping kim', tag: payload.tag, data: { room: roomId } }]);

    // No notification can be clicked headless: a notificationclick built in the worker stands in.
    // Kim's open page is asked to open the room, and the notification goes.
    await worker().evaluate("self.registration.getNotifications().then(([notification]) => self.dispatchEvent(new NotificationEvent('notificationclick', { notification })))");
    await expect.poll(() => texts(kim)).toEqual(['ping kim']);
    await expect.poll(shown).toEqual([]);
    // A fresh tab gets the room in its URL.
    await kim.goto(`${server.url}/demo/?room=${roomId}`);
    await expect.poll(() => texts(kim)).toEqual(['ping kim']);
  } finally {
    await pushService.close();
  }
});

it('an admin signs in with the admin box and resolves open reports from the Reports panel, which updates', async () => {
  const ola = createChatClient({ url: server.url, token: await tokenFor('ola') });
  const room = await ola.rooms.open.mutate({ otherUserId: 'pam' });
  for (const content of ['nasty words', 'just annoying', 'buy my stuff']) await ola.messages.send.mutate({ roomId: room.id, content });
  const pam = await signIn('pam');
  await pam.getByTestId('requests').getByTestId('room-ola').getByRole('button', { name: 'Accept' }).click();
  await pam.getByTestId('conversations').getByTestId('room-ola').click();
  for (const [text, reason] of [['nasty words', 'harassment'], ['just annoying', 'other'], ['buy my stuff', 'spam']] as const) {
    const row = pam.getByTestId('message').filter({ hasText: text });
    await row.getByRole('button', { name: 'Report' }).click();
    await row.locator('select[name="reason"]').selectOption(reason);
    await row.getByRole('button', { name: 'Send report' }).click();
    await row.getByTestId('reported').waitFor();
  }
  expect(await pam.getByRole('button', { name: 'Reports' }).count()).toBe(0);

  const mod = await signIn('mod', { admin: true });
  await mod.getByRole('button', { name: 'Reports' }).click();
  // Ola's only: the other tests leave reports of their own.
  const reports = mod.getByTestId('report').filter({ has: mod.getByTestId('reported-user').getByText('ola', { exact: true }) });
  const listed = () => reports.getByTestId('reported-message').allTextContents();
  await expect.poll(listed).toEqual(['nasty words', 'just annoying', 'buy my stuff']);
  await reports.filter({ hasText: 'just annoying' }).getByRole('button', { name: 'Dismiss' }).click();
  await expect.poll(listed).toEqual(['nasty words', 'buy my stuff']);
  // Deleted for good: gone from pam's pane too, live.
  await reports.filter({ hasText: 'nasty words' }).getByRole('button', { name: 'Delete message' }).click();
  await expect.poll(listed).toEqual(['buy my stuff']);
  await expect.poll(() => texts(pam)).toEqual(['This message was deleted', 'just annoying', 'buy my stuff']);
  // Banned: ola can send no more.
  await reports.filter({ hasText: 'buy my stuff' }).getByRole('button', { name: 'Ban user' }).click();
  await expect.poll(listed).toEqual([]);
  await expect(ola.messages.send.mutate({ roomId: room.id, content: 'still here?' })).rejects.toThrow();
  await ola.close();
});

/** A small landscape, for the pasted picture (and the README's screenshot). */
const landscape = async () =>
  (await import('sharp')).default(
    Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="480" height="300">
      <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#3b6fd8"/><stop offset="1" stop-color="#f6c28b"/></linearGradient></defs>
      <rect width="480" height="300" fill="url(#sky)"/><circle cx="360" cy="110" r="38" fill="#fff3c4"/>
      <path d="M0 300 L0 210 L90 120 L170 200 L250 110 L360 220 L420 170 L480 210 L480 300 Z" fill="#2f4a6b"/>
      <path d="M0 300 L0 250 L120 190 L230 250 L330 200 L480 260 L480 300 Z" fill="#1f3347"/></svg>`),
  )
    .png()
    .toBuffer();

it('a pasted image attaches like a picked one: a thumbnail for both, and Seen once the other has looked', async () => {
  const quinn = await signIn('quinn');
  const rosa = await signIn('rosa');
  await quinn.getByPlaceholder('Chat with…').fill('rosa');
  await quinn.getByRole('button', { name: 'Open' }).click();
  await send(quinn, 'back from the hills!');
  await rosa.getByTestId('requests').getByTestId('room-quinn').getByRole('button', { name: 'Accept' }).click();
  await rosa.getByTestId('conversations').getByTestId('room-quinn').click();
  await send(rosa, 'welcome back, how was it?');
  await expect.poll(() => texts(quinn)).toEqual(['back from the hills!', 'welcome back, how was it?']);

  // A paste carrying a file, as a screenshot or a copied picture gives one; the composer keeps no text of it.
  const png = await landscape();
  await quinn.getByPlaceholder('Message').evaluate((input, bytes) => {
    const g = globalThis as unknown as {
      DataTransfer: new () => { items: { add(f: unknown): void } };
      File: new (parts: unknown[], name: string, o: { type: string }) => unknown;
      ClipboardEvent: new (type: string, init: object) => unknown;
    };
    const clipboardData = new g.DataTransfer();
    clipboardData.items.add(new g.File([new Uint8Array(bytes)], 'image.png', { type: 'image/png' }));
    (input as unknown as { dispatchEvent(e: unknown): void }).dispatchEvent(new g.ClipboardEvent('paste', { clipboardData, bubbles: true, cancelable: true }));
  }, [...png]);
  await expect.poll(() => quinn.getByTestId('attached').textContent()).toBe('1');
  expect(await quinn.getByPlaceholder('Message').inputValue()).toBe('');
  await send(quinn, 'the view from the ridge');
  for (const page of [quinn, rosa]) {
    const image = page.getByTestId('attachment').locator('img');
    await image.waitFor();
    await expect.poll(() => image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
  }
  expect(await texts(rosa)).toContain('the view from the ridge');
  await quinn.getByTestId('seen').waitFor();
  // The committed picture changes only when asked: UPDATE_SCREENSHOT=1 npm run test:e2e.
  if (process.env.UPDATE_SCREENSHOT === '1') await quinn.screenshot({ path: SCREENSHOT });
});
