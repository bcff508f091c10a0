import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { tempDir } from './support/temp-dir.ts';
import { appTest } from './support/test-app.ts';

const run = promisify(execFile);
const root = new URL('..', import.meta.url).pathname;
// The machine's own Node (20 here), not the project's pinned 24: the package must not need type stripping.
const systemNode = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;

const it = appTest(import.meta.filename);

it('`npm run pack:sdk` writes the tarball the README installs; a plain Node script installs and uses it: ESM JavaScript, types, tRPC as a peer', async ({ t }) => {
  await using scratch = await tempDir('parley-sdk-');
  const dir = scratch.path;
  // The README's own command, with the tarball sent to this test's directory instead of the checkout.
  await run('npm', ['run', 'pack:sdk', '--', '--pack-destination', dir], { cwd: root });
  const tarball = join(dir, 'parley-client-0.1.0.tgz');
  expect(existsSync(tarball)).toBe(true);
  // The peers come from this checkout's node_modules (the install is offline), packed in one npm run.
  const peers = ['@trpc/client', '@trpc/server', 'zod', 'typescript', 'ws', '@types/ws', '@types/node', 'undici-types'];
  const { stdout: packed } = await run('npm', ['pack', '--json', '--pack-destination', dir, ...peers.map((name) => `./node_modules/${name}`)], { cwd: root });
  const local = (JSON.parse(packed) as Array<{ filename: string }>).map((p) => join(dir, p.filename));
  expect(local).toHaveLength(peers.length);
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball, ...local], { cwd: dir });
  const files = await readdir(join(dir, 'node_modules/@parley/client/dist'), { recursive: true });
  expect(files.filter((f) => f.endsWith('.js') && !/^(client-sdk|contracts)\//.test(f))).toEqual([]);
  expect(files).toContain('client-sdk/index.d.ts');
  await writeFile(
    join(dir, 'script.mjs'),
    `import { createChatClient, parleyCodeOf } from '@parley/client';
     import { TRPCClientError } from '@trpc/client';
     import WebSocket from 'ws';
     const chat = createChatClient({ url: process.argv[2], token: process.argv[3], WebSocket });
     const room = await chat.rooms.open.mutate({ otherUserId: 'pkg-b' });
     // A subscription needs a WebSocket class on Node 20: the one from \`ws\`.
     await new Promise((ready) => chat.rooms.onEvent.subscribe(undefined, { onData: (e) => e.type === 'ready' && ready() }));
     const sent = await chat.outbox.send(room.id, 'from a packed SDK');
     const err = await chat.messages.list.query({ roomId: '00000000-0000-4000-8000-000000000000' }).catch((e) => e);
     console.log(JSON.stringify({ content: sent.content, seq: sent.seq, code: parleyCodeOf(err), sameClass: err instanceof TRPCClientError }));
     await chat.close();`,
  );
  const { stdout } = await run(systemNode, ['script.mjs', t.url, await t.token('pkg-a')], { cwd: dir });
  expect(JSON.parse(stdout)).toEqual({ content: 'from a packed SDK', seq: 1, code: 'ROOM_NOT_FOUND', sameClass: true });

  // The same install, type-checked as an app would: the packed .d.ts files, not the sources, and
  // the package's declarations checked too (skipLibCheck off): they must need nothing but the
  // peers, with no server module (fastify, MikroORM) behind the router's type. Types that degrade to
  // `any` are caught by the consumer's @ts-expect-error lines.
  await writeFile(join(dir, 'consumer.ts'), CONSUMER);
  await writeFile(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2023', 'dom'], types: [], skipLibCheck: false },
      files: ['consumer.ts'],
    }),
  );
  const typecheck = await run(process.execPath, [join(dir, 'node_modules/typescript/bin/tsc'), '-p', dir], { cwd: dir }).catch((e: { stdout: string }) => e);
  expect(typecheck.stdout).toBe('');
}, 180_000);

/**
 * An app's use of the package: the client, event and output types, the error class it shares with
 * tRPC, `parleyCodeOf`. Each `@ts-expect-error` fails the check if the types it guards degrade to `any`.
 */
const CONSUMER = `
import { createChatClient, parleyCodeOf, TRPCClientError, type ChatClient, type ConnectionStatus, type InboxEvent, type Message, type ParleyErrorCode, type RoomEvent, type RouterOutputs } from '@parley/client';
import { TRPCClientError as AppClientError } from '@trpc/client';
import WebSocket from 'ws';

// Node 20 has no global WebSocket: the \`ws\` package's class is what the README says to pass.
const chat: ChatClient = createChatClient({ url: 'http://127.0.0.1:3000', token: () => 'a token', WebSocket });

export async function use(): Promise<string> {
  const room = await chat.rooms.open.mutate({ otherUserId: 'bob' });
  const page = await chat.messages.list.query({ roomId: room.id, direction: 'backward' });
  const newest: Message | undefined = page.items.at(-1);
  chat.messages.onEvent.subscribe({ roomId: room.id, lastEventId: page.lastEventId }, {
    onData: ({ id, data }: { id: string; data: RoomEvent }) => {
      if (data.type === 'message') console.log(id, data.message.content.toUpperCase());
      else if (data.type === 'presence') console.log(data.user, data.online === true);
      else if (data.type === 'read') console.log(data.seq + 1);
    },
  });
  chat.rooms.onEvent.subscribe(undefined, {
    onData: (event: InboxEvent) => {
      if (event.type === 'room_created') console.log(event.room.unread + 1, event.room.other.online);
    },
  });
  const inbox: RouterOutputs['rooms']['list'] = await chat.rooms.list.query({ limit: 10 });
  const status: ConnectionStatus = chat.connection.get().status;
  // @ts-expect-error a send needs its content
  await chat.messages.send.mutate({ roomId: room.id });
  // @ts-expect-error a room's last seq is a number
  const wrong: string = room.last_seq;
  try {
    await chat.messages.edit.mutate({ roomId: room.id, messageId: newest?.id ?? '', content: 'edited' });
  } catch (err) {
    const code: ParleyErrorCode | undefined = parleyCodeOf(err);
    // @ts-expect-error codes are the closed set, not any string
    const made: ParleyErrorCode = 'NOT_A_CODE';
    // One class: the SDK's re-export is the app's own tRPC client error.
    const same: typeof AppClientError = TRPCClientError;
    if (err instanceof AppClientError && err instanceof same) return String(code) + err.message + made;
  }
  return String(inbox.nextCursor) + status + wrong;
}
`;
