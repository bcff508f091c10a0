import { rm } from 'node:fs/promises';
import { afterAll, expect, it } from 'vitest';
import { createChatClient } from '../client-sdk/index.ts';
import { createApp } from '../server/app.ts';
import { signToken } from '../server/identity/sign-token.ts';
import { loadConfig } from '../server/infra/config/config.ts';
import { tempDataDir } from './support/temp-dir.ts';

const dataDir = await tempDataDir('parley-embedded-');
afterAll(() => rm(dataDir, { recursive: true, force: true }));

// What `npm start` does with no configuration: embedded PostgreSQL and a dev secret under DATA_DIR.
const config = loadConfig({ PORT: '0', METRICS_PORT: '0', LOG_LEVEL: 'silent', DATA_DIR: dataDir });

it('runs on the embedded default and keeps data and the dev secret across a restart', async () => {
  let roomId: string;
  let token: string;
  {
    await using app = await createApp(config);
    token = await signToken({ secret: app.jwtSecret!, userId: 'alice' });
    const chat = createChatClient({ url: await app.listen(), token });
    roomId = (await chat.rooms.open.mutate({ otherUserId: 'bob' })).id;
    await chat.messages.send.mutate({ roomId, content: 'still here?' });
    await chat.close();
  }
  {
    await using app = await createApp(config);
    const url = await app.listen();
    expect(await (await fetch(`${url}/readyz`)).json()).toEqual({ status: 'ok' });
    const chat = createChatClient({ url, token });
    const page = await chat.messages.list.query({ roomId });
    expect(page.items.map((m) => [m.seq, m.content])).toEqual([[1, 'still here?']]);
    await chat.close();
  }
});
