import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the bot answers one attempt: a 200, never, a 500, by closing the connection, or a redirect. */
export type BotAnswer = 'ok' | 'hang' | 'error500' | 'close' | 'redirect';

export interface BotRequest {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** X-Relay-Delivery-Id */
  deliveryId: string;
  answer: BotAnswer;
}

/**
 * A real HTTP server standing for a page's bot behind the gateway's relay: it records every
 * request and answers each delivery by a plan (attempt by attempt), a 200 once the plan is done.
 */
export class FakeBot {
  readonly requests: BotRequest[] = [];
  private readonly plans = new Map<string, BotAnswer[]>();
  private readonly nextPlans: BotAnswer[][] = [];
  private readonly hanging = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    /** e.g. http://127.0.0.1:40123 */
    readonly origin: string,
  ) {}

  static async start(): Promise<FakeBot> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const bot = new FakeBot(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    server.on('request', (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => bot.answer(request.url ?? '/', request.headers, Buffer.concat(chunks), response));
    });
    return bot;
  }

  /** The URL bots are configured with. */
  get url(): string {
    return `${this.origin}/hook`;
  }

  /** The next delivery this bot has not seen yet answers its attempts with `plan`, then 200. */
  planNextDelivery(plan: BotAnswer[]): void {
    this.nextPlans.push([...plan]);
  }

  /** Drops every plan: from now on each attempt is answered 200. */
  recover(): void {
    this.plans.clear();
    this.nextPlans.length = 0;
  }

  /** Requests answered 200, in arrival order. */
  get accepted(): BotRequest[] {
    return this.requests.filter((request) => request.answer === 'ok');
  }

  attemptsOf(deliveryId: string): BotRequest[] {
    return this.requests.filter((request) => request.deliveryId === deliveryId);
  }

  async close(): Promise<void> {
    for (const response of this.hanging) response.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private answer(path: string, headers: IncomingHttpHeaders, body: Buffer, response: ServerResponse): void {
    const deliveryId = String(headers['x-relay-delivery-id'] ?? '');
    if (!this.plans.has(deliveryId)) this.plans.set(deliveryId, this.nextPlans.shift() ?? []);
    const answer = (this.plans.get(deliveryId) as BotAnswer[]).shift() ?? 'ok';
    this.requests.push({ path, headers, body, deliveryId, answer });
    switch (answer) {
      case 'ok':
        response.writeHead(200, { 'content-type': 'text/plain' }).end('EVENT_RECEIVED');
        return;
      case 'hang':
        this.hanging.add(response);
        return;
      case 'error500':
        response.writeHead(500).end('bot crashed');
        return;
      case 'close':
        response.socket?.destroy();
        return;
      case 'redirect':
        response.writeHead(302, { location: `${this.origin}/redirected` }).end();
        return;
    }
  }
}
