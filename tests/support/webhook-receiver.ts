import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** An event as a webhook receiver gets it (the fields the tests look at). */
export interface ReceivedEvent {
  id: string;
  type: string;
  data: { message?: { id: string; content: string }; room?: { id: string; participant2: string } };
}

export interface WebhookReceiver {
  /** A WEBHOOK_URL that reaches it. */
  url: string;
  /** Every event received, in order of arrival; each answered 204. */
  events: ReceivedEvent[];
  ofType(type: string): ReceivedEvent[];
  close(): Promise<void>;
}

/** A receiver on loopback that takes every event. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const events: ReceivedEvent[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      events.push(JSON.parse(body) as ReceivedEvent);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    events,
    ofType: (type) => events.filter((e) => e.type === type),
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
