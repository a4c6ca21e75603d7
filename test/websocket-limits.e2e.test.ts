import { once } from 'node:events';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

/**
 * The WebSocket findings of issue 8, each against a real gateway over real sockets: what a
 * message, a connection and its subscriptions may hold is bounded, and going past a bound
 * ends that connection (or that one operation) with a clear code while the gateway goes on.
 */

const KiB = 1024;

interface Message {
  type: string;
  id?: string;
  payload?: unknown;
}

/** A graphql-transport-ws client written by hand, to send what a well-behaved client never would. */
class RawClient {
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly listeners = new Set<() => void>();

  private constructor(readonly socket: WebSocket) {
    socket.on('error', () => undefined); // the gateway may cut it short: the close code says why
    socket.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString()) as Message);
      for (const listener of this.listeners) listener();
    });
    this.closed = once(socket, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  }

  static async open(gateway: TestGateway, options: { acknowledged?: boolean } = {}): Promise<RawClient> {
    const client = new RawClient(new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws'));
    await once(client.socket, 'open');
    if (options.acknowledged ?? true) {
      client.send({ type: 'connection_init', payload: {} });
      await client.waitFor((message) => message.type === 'connection_ack');
    }
    return client;
  }

  send(message: Message | string): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (received so far or later) that matches. */
  waitFor(predicate: (message: Message) => boolean, timeoutMs = 5000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(predicate);
        if (!found) return false;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`no such message within ${timeoutMs} ms; got ${JSON.stringify(this.messages).slice(0, 500)}`));
      }, timeoutMs);
      if (!check()) this.listeners.add(check);
    });
  }
}

/** A message of exactly `bytes` bytes: `message` with its payload padded by a string. */
function padded(message: { type: string; id?: string; payload: Record<string, unknown> }, bytes: number): string {
  const empty = JSON.stringify({ ...message, payload: { ...message.payload, padding: '' } });
  const text = JSON.stringify({ ...message, payload: { ...message.payload, padding: 'x'.repeat(bytes - empty.length) } });
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

/** A subscribe message of exactly `bytes` bytes: a valid subscription and a long comment. */
function paddedSubscribe(id: string, bytes: number): string {
  const query = (comment: string) =>
    JSON.stringify({ id, type: 'subscribe', payload: { query: `subscription { scanned(ref: "big") { id } } #${comment}` } });
  const text = query('x'.repeat(bytes - query('').length));
  expect(Buffer.byteLength(text)).toBe(bytes);
  return text;
}

describe('WebSocket limits', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  afterEach(async () => {
    // Whatever a test did to its own connections, the gateway still answers.
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });

  describe('message size', () => {
    it('takes a 64 KiB message and closes a connection sending 64 KiB + 1 with 1009 (Message Too Big)', async () => {
      const client = await RawClient.open(gateway);
      const subscribers = gateway.services.feed.subscriberCount;
      client.send(paddedSubscribe('exactly-64k', 64 * KiB));
      await waitForSubscribers(gateway, subscribers + 1);
      client.send(paddedSubscribe('one-byte-more', 64 * KiB + 1));
      expect((await client.closed).code).toBe(1009);
    });

    it('closes a connection sending more than 4 KiB before its connection_ack with 1009', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      client.send(padded({ type: 'connection_init', payload: {} }, 4 * KiB + 1));
      expect(await client.closed).toEqual({ code: 1009, reason: 'Message too big: at most 4096 bytes before connection_ack' });
      expect(client.messages).toEqual([]);
    });

    it('acknowledges a connection_init of 4 KiB, then takes messages up to 64 KiB', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      client.send(padded({ type: 'connection_init', payload: {} }, 4 * KiB));
      await client.waitFor((message) => message.type === 'connection_ack');
      client.send(padded({ type: 'ping', payload: {} }, 60 * KiB));
      const pong = await client.waitFor((message) => message.type === 'pong');
      expect(JSON.stringify(pong).length).toBeGreaterThan(59 * KiB);
      client.socket.close();
    });

    it('closes a connection sending 64 KiB + 1 before connection_init with 1009, the frame refused by its header', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      client.send(padded({ type: 'connection_init', payload: {} }, 64 * KiB + 1));
      expect((await client.closed).code).toBe(1009);
    });

    it('does not echo a big ping before connection_init: 1009 and no pong; a small one gets its pong', async () => {
      const big = await RawClient.open(gateway, { acknowledged: false });
      big.send(padded({ type: 'ping', payload: {} }, 5 * KiB));
      expect((await big.closed).code).toBe(1009);
      expect(big.messages).toEqual([]);

      const small = await RawClient.open(gateway, { acknowledged: false });
      small.send({ type: 'ping', payload: { at: 1 } });
      expect(await small.waitFor((message) => message.type === 'pong')).toEqual({ type: 'pong', payload: { at: 1 } });
      small.socket.close();
    });

    it('refuses a WebSocket ping frame over 125 bytes before connection_init (1002), before reading its payload', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      // ws will not send such a frame, so it is written by hand: FIN + ping, masked, 16-bit length 200.
      const payload = Buffer.alloc(200, 0x61);
      const frame = Buffer.concat([Buffer.from([0x89, 0x80 | 126, 0, 200, 0, 0, 0, 0]), payload]);
      (client.socket as unknown as { _socket: Socket })._socket.write(frame);
      expect((await client.closed).code).toBe(1002);
    });
  });

  describe('connection_init', () => {
    it('closes a socket that sends no connection_init within 3 s with 4408', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      expect(await client.closed).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    });
  });

  describe('operations per connection', () => {
    it('refuses the 101st subscription of a connection with TOO_MANY_SUBSCRIPTIONS; the connection and its 100 go on', async () => {
      const client = await RawClient.open(gateway);
      const subscribers = gateway.services.feed.subscriberCount;
      const subscribe = (id: string) =>
        client.send({ id, type: 'subscribe', payload: { query: 'subscription { scanned(ref: "cap") { ref } }' } });
      for (let index = 0; index <= 100; index++) subscribe(`s${index}`);

      const refused = await client.waitFor((message) => message.type === 'error');
      expect(refused).toEqual({
        id: 's100',
        type: 'error',
        payload: [
          {
            message: 'Too many subscriptions on this connection: at most 100 at once. Complete one, or open another connection.',
            extensions: { code: 'TOO_MANY_SUBSCRIPTIONS', limit: 100 },
          },
        ],
      });
      await waitForSubscribers(gateway, subscribers + 100);

      // The hundred are live: a scan reaches each of them.
      expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'cap' })])).status).toBe(200);
      for (let index = 0; index < 100; index++) await client.waitFor((message) => message.type === 'next' && message.id === `s${index}`);

      // One completed, another fits.
      client.send({ id: 's0', type: 'complete' });
      await waitForSubscribers(gateway, subscribers + 99);
      subscribe('s101');
      await waitForSubscribers(gateway, subscribers + 100);
      expect(client.messages.filter((message) => message.type === 'error')).toHaveLength(1);
      client.socket.close();
    });
  });

  describe('message rate', () => {
    it('answers a burst of 150 messages', async () => {
      const client = await RawClient.open(gateway);
      for (let index = 0; index < 150; index++) client.send({ type: 'ping', payload: { index } });
      await client.waitFor((message) => message.type === 'pong' && (message.payload as { index: number }).index === 149);
      expect(client.messages.filter((message) => message.type === 'pong')).toHaveLength(150);
      client.socket.close();
    });

    it('closes a connection sending a flood of messages with 1008 (policy violation), answering none past the bound', async () => {
      const client = await RawClient.open(gateway);
      for (let index = 0; index < 2_000; index++) client.send({ type: 'ping' });
      expect(await client.closed).toEqual({ code: 1008, reason: 'Too many messages: at most 100 a second' });
      expect(client.messages.filter((message) => message.type === 'pong').length).toBeLessThanOrEqual(200);
    });

    it('ends a connection flooding WebSocket ping frames', async () => {
      const client = await RawClient.open(gateway, { acknowledged: false });
      for (let index = 0; index < 2_000; index++) client.socket.ping();
      // ws itself terminates a peer with 60 pongs pending (1006 here, no close frame); when the
      // pongs keep up, the message rate closes it (1008). Either way it ends.
      expect([1006, 1008]).toContain((await client.closed).code);
    });

    it('lets a normal client subscribe and receive after all of this', async () => {
      const subscriber = TestSubscriber.open<{ scanned: { ref: string } }>(gateway.url, 'subscription { scanned(ref: "after") { ref } }');
      try {
        await waitForSubscribers(gateway, gateway.services.feed.subscriberCount + 1);
        expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'after' })])).status).toBe(200);
        await subscriber.waitForEvents(1);
        expect(subscriber.events).toEqual([{ scanned: { ref: 'after' } }]);
      } finally {
        await subscriber.close();
      }
    });
  });
});
