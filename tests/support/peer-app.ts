import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { createApp, type ParleyApp } from '../../server/app.ts';
import { loadConfig } from '../../server/config.ts';
import { TEST_SECRET, type TestApp } from './test-app.ts';

export interface PeerApp {
  app: ParleyApp;
  url: string;
  client(userId: string): Promise<ChatClient>;
  close(): Promise<void>;
}

/** A second instance, in this process, on the database of `first`: what a second `npm start` would be. */
export async function startPeerApp(first: TestApp, env: Record<string, string> = {}): Promise<PeerApp> {
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: first.databaseUrl,
    JWT_SECRET: TEST_SECRET,
    SEND_RATE_PER_SEC: '0',
    TYPING_RATE_PER_SEC: '0',
    ...env,
  });
  const app = await createApp(config);
  const url = await app.listen();
  const clients: ChatClient[] = [];
  return {
    app,
    url,
    async client(userId) {
      const client = createChatClient({ url, token: await first.token(userId) });
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.allSettled(clients.map((c) => c.close()));
      await app.close();
    },
  };
}
