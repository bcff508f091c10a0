import { createChatClient, type ChatClient } from '../../client-sdk/index.ts';
import { createApp, type ParleyApp } from '../../server/app.ts';
import { testConfig, type TestApp } from './test-app.ts';

export interface PeerApp {
  app: ParleyApp;
  url: string;
  metricsUrl: string;
  client(userId: string): Promise<ChatClient>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A second instance, in this process, on the database of `first`: what a second `npm start` would be. */
export async function startPeerApp(first: Pick<TestApp, 'databaseUrl' | 'token'>, env: Record<string, string> = {}): Promise<PeerApp> {
  const app = await createApp(testConfig(first.databaseUrl, env));
  const url = await app.listen();
  const clients: ChatClient[] = [];
  const close = async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await app.close();
  };
  return {
    app,
    url,
    metricsUrl: app.metricsUrl!,
    async client(userId) {
      // Like the first app's clients: no delivery receipts, which would add events to exact streams.
      const client = createChatClient({ url, token: await first.token(userId), deliveryReceipts: false });
      clients.push(client);
      return client;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
