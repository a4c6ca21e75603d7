import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { print, type GraphQLFormattedError } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../src/app/gateway';
import { ScanKind } from '../src/scans/scan.entity';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { CodeDocument, GenerateCodeDocument, ScannedDocument, ScansDocument, type ScannedSubscription } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { eventually, TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

reportSkippedDatabases();

type Payload = ScannedSubscription['scanned'];
type ScannedVariables = { pageId?: string; codeId?: string; ref?: string };

const SCANNED = print(ScannedDocument);
const OTHER_PAGE_ID = '5550001';

/** How a delivered scan is recognised: scanOf gives every scan its own timestamp. */
const occurredAt = (scan: SimulatedScan) => new Date(scan.timestamp).toISOString();
const occurredAts = (subscriber: TestSubscriber<ScannedSubscription>) => subscriber.events.map((event) => event.scanned.occurredAt);
const received = (subscriber: TestSubscriber<ScannedSubscription>, scan: SimulatedScan) =>
  subscriber.events.some((event) => event.scanned.occurredAt === occurredAt(scan));

/** Errors as the subscriber saw them: an `error` message carries a list, a `next` message its errors. */
const errorsOf = (subscriber: TestSubscriber<ScannedSubscription>): GraphQLFormattedError[] =>
  subscriber.errors.flatMap((error) => (Array.isArray(error) ? error : [error])) as GraphQLFormattedError[];

/** Posts a signed webhook and expects it acknowledged. */
async function post(gateway: Gateway, scans: SimulatedScan[]): Promise<void> {
  const answer = await postScans(gateway.url, scans);
  expect(answer).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
}

function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * A graphql-transport-ws client written by hand on a raw `ws` socket, so that it can
 * stop reading: after subscribing, the underlying TCP socket is paused and the
 * gateway's messages pile up in the kernel buffers, then in the gateway.
 */
async function openStalledSubscriber(baseUrl: string, query: string, variables: Record<string, unknown>) {
  const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  const messages: { type: string; id?: string; payload?: { data?: { scanned: { occurredAt: string } } } }[] = [];
  let bytes = 0;
  socket.on('error', () => undefined); // a reset at the end is expected
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'open');
  socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
  const [ack] = (await once(socket, 'message')) as [Buffer];
  expect(JSON.parse(ack.toString())).toEqual({ type: 'connection_ack' });
  socket.on('message', (data: Buffer) => {
    bytes = Math.max(bytes, data.length);
    messages.push(JSON.parse(data.toString()) as (typeof messages)[number]);
  });
  socket.send(JSON.stringify({ id: 'slow-1', type: 'subscribe', payload: { query, variables } }));
  const tcp = (socket as unknown as { _socket: Socket })._socket;
  tcp.pause();
  return {
    socket,
    closed,
    messages,
    largestMessage: () => bytes,
    resume: () => tcp.resume(),
  };
}

describe.each(DATABASE_KINDS)('scanned subscription on %s', (kind) => {
  let gateway: TestGateway;
  /** Closers of everything a test opened, run after each test. */
  let cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });
  afterEach(async () => {
    await Promise.all(cleanups.map((cleanup) => cleanup()));
    cleanups = [];
    // The next test counts its own subscribers from zero.
    await eventually(() => gateway.services.feed.subscriberCount === 0, 5000, 'subscribers of the previous test to be gone');
  });

  function subscribe(variables: ScannedVariables = {}): TestSubscriber<ScannedSubscription> {
    const subscriber = TestSubscriber.open<ScannedSubscription>(gateway.url, SCANNED, variables);
    cleanups.push(() => subscriber.close());
    return subscriber;
  }

  async function generate(ref: string | null) {
    const input = ref === null ? {} : { data: { ref }, imageSize: 100 };
    return (await executeOk(gateway.url, GenerateCodeDocument, { input })).generateCode;
  }

  describe('delivery', () => {
    it('delivers a stored scan with every field, its code counting this scan already', async () => {
      const code = await generate('live-1');
      const subscriber = subscribe({ ref: 'live-1' });
      await waitForSubscribers(gateway, 1);

      const first = scanOf(TEST_PAGE_ID, { ref: 'live-1', kind: ScanKind.POSTBACK, source: 'MESSENGER_CODE' });
      const before = Date.now();
      await post(gateway, [first]);
      const after = Date.now();
      await subscriber.waitForEvents(1);

      const stored = await executeOk(gateway.url, ScansDocument, { codeId: code.id });
      expect(stored.scans.totalCount).toBe(1);
      const event = subscriber.events[0].scanned;
      expect(event).toEqual({
        id: stored.scans.edges[0].node.id,
        pageId: TEST_PAGE_ID,
        ref: 'live-1',
        kind: 'POSTBACK',
        source: 'MESSENGER_CODE',
        occurredAt: occurredAt(first),
        receivedAt: stored.scans.edges[0].node.receivedAt,
        code: { id: code.id, ref: 'live-1', scanCount: 1, lastScannedAt: occurredAt(first) },
      } satisfies Payload);
      const receivedAt = Date.parse(event.receivedAt);
      expect(receivedAt).toBeGreaterThanOrEqual(before);
      expect(receivedAt).toBeLessThanOrEqual(after);

      // A returning person: REFERRAL, and Messenger left the source out.
      const second = scanOf(TEST_PAGE_ID, { ref: 'live-1', source: null });
      await post(gateway, [second]);
      await subscriber.waitForEvents(2);
      expect(subscriber.events[1].scanned).toMatchObject({
        kind: 'REFERRAL',
        source: null,
        occurredAt: occurredAt(second),
        code: { id: code.id, scanCount: 2, lastScannedAt: occurredAt(second) },
      });
      expect(subscriber.events[1].scanned.id).not.toBe(event.id);
      expect(subscriber.errors).toEqual([]);
    });

    it('delivers several scans of one batch in Messenger order with running counts', async () => {
      const batchCode = await generate('batch-1');
      const otherCode = await generate('batch-2');
      const ofBatchCode = subscribe({ ref: 'batch-1' });
      const everything = subscribe();
      await waitForSubscribers(gateway, 2);

      const refs = ['batch-1', 'batch-2', 'batch-1', 'batch-1', 'batch-2', 'batch-1', 'batch-1'];
      const scans = refs.map((ref) => scanOf(TEST_PAGE_ID, { ref }));
      await post(gateway, scans);
      await everything.waitForEvents(scans.length);
      await ofBatchCode.waitForEvents(5);

      expect(everything.events.map(({ scanned }) => [scanned.occurredAt, scanned.code?.id, scanned.code?.scanCount])).toEqual([
        [occurredAt(scans[0]), batchCode.id, 1],
        [occurredAt(scans[1]), otherCode.id, 1],
        [occurredAt(scans[2]), batchCode.id, 2],
        [occurredAt(scans[3]), batchCode.id, 3],
        [occurredAt(scans[4]), otherCode.id, 2],
        [occurredAt(scans[5]), batchCode.id, 4],
        [occurredAt(scans[6]), batchCode.id, 5],
      ]);
      const batchScans = scans.filter((scan) => scan.ref === 'batch-1');
      expect(ofBatchCode.events.map(({ scanned }) => [scanned.occurredAt, scanned.code?.scanCount, scanned.code?.lastScannedAt])).toEqual(
        batchScans.map((scan, index) => [occurredAt(scan), index + 1, occurredAt(scan)]),
      );
      const stored = await executeOk(gateway.url, CodeDocument, { id: batchCode.id });
      expect(stored.code?.scanCount).toBe(5);
    });

    it('delivers an orphan scan with code null', async () => {
      const subscriber = subscribe({ pageId: TEST_PAGE_ID, ref: 'no-code-for-this' });
      await waitForSubscribers(gateway, 1);
      const orphan = scanOf(TEST_PAGE_ID, { ref: 'no-code-for-this' });
      await post(gateway, [orphan]);
      await subscriber.waitForEvents(1);
      expect(subscriber.events[0].scanned).toMatchObject({
        pageId: TEST_PAGE_ID,
        ref: 'no-code-for-this',
        occurredAt: occurredAt(orphan),
        code: null,
      });
    });

    it('delivers a scan without ref as a scan of the page static code', async () => {
      const staticCode = await generate(null);
      expect(staticCode.ref).toBeNull();
      const countBefore = (await executeOk(gateway.url, CodeDocument, { id: staticCode.id })).code?.scanCount ?? NaN;
      const subscriber = subscribe({ codeId: staticCode.id });
      await waitForSubscribers(gateway, 1);

      const scan = scanOf(TEST_PAGE_ID); // no ref: the static code
      await post(gateway, [scan]);
      await subscriber.waitForEvents(1);
      expect(subscriber.events[0].scanned).toMatchObject({
        pageId: TEST_PAGE_ID,
        ref: null,
        occurredAt: occurredAt(scan),
        code: { id: staticCode.id, ref: null, scanCount: countBefore + 1, lastScannedAt: occurredAt(scan) },
      });
    });
  });

  describe('filters', () => {
    it('gives each subscriber exactly the scans its arguments match', async () => {
      const codeA = await generate('filter-a');
      const codeB = await generate('filter-b');
      expect(codeB.id).not.toBe(codeA.id);
      const subscribers = {
        page: subscribe({ pageId: TEST_PAGE_ID }),
        code: subscribe({ codeId: codeA.id }),
        ref: subscribe({ ref: 'filter-a' }),
        all: subscribe(),
        pageAndRef: subscribe({ pageId: TEST_PAGE_ID, ref: 'filter-a' }),
      };
      await waitForSubscribers(gateway, Object.keys(subscribers).length);

      const ofA = scanOf(TEST_PAGE_ID, { ref: 'filter-a' });
      const ofB = scanOf(TEST_PAGE_ID, { ref: 'filter-b' });
      const otherPageRefA = scanOf(OTHER_PAGE_ID, { ref: 'filter-a' });
      const otherPageRefB = scanOf(OTHER_PAGE_ID, { ref: 'filter-b' });
      const ofStatic = scanOf(TEST_PAGE_ID);
      const orphan = scanOf(TEST_PAGE_ID, { ref: 'filter-orphan' });
      const otherPageStatic = scanOf(OTHER_PAGE_ID);
      await post(gateway, [ofA, ofB]);
      await post(gateway, [otherPageRefA, otherPageRefB, otherPageStatic]);
      await post(gateway, [ofStatic, orphan]);
      // Every subscriber matches the marker: once it has arrived, whatever else was coming has too.
      const marker = scanOf(TEST_PAGE_ID, { ref: 'filter-a' });
      await post(gateway, [marker]);
      for (const [name, subscriber] of Object.entries(subscribers)) {
        await subscriber.waitFor((s) => received(s, marker), 5000, `the marker at the "${name}" subscriber`);
      }

      const expected = {
        page: [ofA, ofB, ofStatic, orphan, marker],
        code: [ofA, marker],
        ref: [ofA, otherPageRefA, marker],
        all: [ofA, ofB, otherPageRefA, otherPageRefB, otherPageStatic, ofStatic, orphan, marker],
        pageAndRef: [ofA, marker],
      };
      for (const [name, subscriber] of Object.entries(subscribers)) {
        expect({ [name]: occurredAts(subscriber) }).toEqual({ [name]: expected[name as keyof typeof expected].map(occurredAt) });
        expect(subscriber.errors).toEqual([]);
      }
      expect(subscribers.code.events.map(({ scanned }) => scanned.code?.scanCount)).toEqual([1, 2]);
      expect(subscribers.ref.events.map(({ scanned }) => [scanned.pageId, scanned.code?.id ?? null])).toEqual([
        [TEST_PAGE_ID, codeA.id],
        [OTHER_PAGE_ID, null], // the other page has no code for that ref: an orphan there
        [TEST_PAGE_ID, codeA.id],
      ]);
    });

    it.each([
      ['an unknown code id', randomUUID()],
      ['an id that is no code id at all', 'not-a-code-id'],
    ])('refuses codeId of %s with NOT_FOUND', async (_name, codeId) => {
      const subscriber = subscribe({ codeId });
      await subscriber.waitFor((s) => s.errors.length > 0, 5000, 'the subscription error');
      const [error] = errorsOf(subscriber);
      expect(error.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeId' });
      expect(subscriber.events).toEqual([]);
      expect(gateway.services.feed.subscriberCount).toBe(0);
    });
  });

  describe('duplicates', () => {
    it('publishes a redelivered event nothing, across batches, within one and at the same time', async () => {
      const code = await generate('dup-1');
      const subscriber = subscribe({ codeId: code.id });
      await waitForSubscribers(gateway, 1);

      const first = scanOf(TEST_PAGE_ID, { ref: 'dup-1' });
      await post(gateway, [first]);
      await subscriber.waitForEvents(1);
      await post(gateway, [first]); // Meta redelivers the same event
      const second = scanOf(TEST_PAGE_ID, { ref: 'dup-1' });
      await post(gateway, [second, second]); // twice inside one batch
      const third = scanOf(TEST_PAGE_ID, { ref: 'dup-1' });
      await Promise.all([post(gateway, [third]), post(gateway, [third])]); // two copies at the same time
      const marker = scanOf(TEST_PAGE_ID, { ref: 'dup-1' });
      await post(gateway, [marker]);
      await subscriber.waitFor((s) => received(s, marker), 5000, 'the marker');

      expect(subscriber.events.map(({ scanned }) => [scanned.occurredAt, scanned.code?.scanCount])).toEqual([
        [occurredAt(first), 1],
        [occurredAt(second), 2],
        [occurredAt(third), 3],
        [occurredAt(marker), 4],
      ]);
      expect((await executeOk(gateway.url, CodeDocument, { id: code.id })).code?.scanCount).toBe(4);
    });
  });

  describe('many subscribers', () => {
    it('delivers every scan of a series to 300 subscribers multiplexed on 10 connections', async () => {
      const code = await generate('crowd');
      const url = `${gateway.url.replace(/^http/, 'ws')}/graphql`;
      const clients = Array.from({ length: 10 }, () => createClient({ url, webSocketImpl: WebSocket, lazy: false, retryAttempts: 0 }));
      cleanups.push(() => Promise.all(clients.map((client) => client.dispose())).then(() => undefined));
      const lists: Payload[][] = [];
      const errors: unknown[] = [];
      for (let index = 0; index < 300; index += 1) {
        const list: Payload[] = [];
        lists.push(list);
        clients[index % clients.length].subscribe<ScannedSubscription>(
          { query: SCANNED, variables: { ref: 'crowd' } },
          {
            next: (result) => {
              if (result.errors) errors.push(...result.errors);
              if (result.data) list.push(result.data.scanned);
            },
            error: (error) => errors.push(error),
            complete: () => undefined,
          },
        );
      }
      await waitForSubscribers(gateway, 300, 10_000);

      const series = Array.from({ length: 5 }, () => scanOf(TEST_PAGE_ID, { ref: 'crowd' }));
      await post(gateway, series.slice(0, 3));
      await post(gateway, series.slice(3, 4));
      await post(gateway, series.slice(4));
      await eventually(() => lists.every((list) => list.length >= series.length), 10_000, 'every subscriber to get the whole series');

      const expected = series.map((scan, index) => [occurredAt(scan), code.id, index + 1]);
      for (const list of lists) {
        expect(list.map((scan) => [scan.occurredAt, scan.code?.id, scan.code?.scanCount])).toEqual(expected);
      }
      expect(errors).toEqual([]);
    });
  });
});

describe.each(DATABASE_KINDS)('a subscriber that stops reading, on %s', (kind) => {
  const MAX_BACKLOG = 50;
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { SUBSCRIBER_MAX_BACKLOG: String(MAX_BACKLOG) });
  });

  it('keeps a subscriber that reads, however many scans one webhook carries', async () => {
    const normal = TestSubscriber.open<ScannedSubscription>(gateway.url, SCANNED, { ref: 'burst' });
    try {
      await waitForSubscribers(gateway, 1);
      const burst = Array.from({ length: MAX_BACKLOG * 4 }, () => scanOf(TEST_PAGE_ID, { ref: 'burst' }));
      await post(gateway, burst);
      await normal.waitForEvents(burst.length, 10_000);
      expect(normal.events.map(({ scanned }) => scanned.occurredAt)).toEqual(burst.map(occurredAt));
      expect(gateway.services.feed.subscriberCount).toBe(1);
      expect(normal.completed).toBe(false);
    } finally {
      await normal.close();
    }
  });

  it('is disconnected once its backlog is full, while the others receive everything', async () => {
    const code = (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'slow' }, imageSize: 100 } })).generateCode;
    const normal = TestSubscriber.open<ScannedSubscription>(gateway.url, SCANNED, { ref: 'slow' });
    // Many aliases of the same fields: every message is some 10 KB, so the kernel buffers fill up soon.
    const bulk = Array.from(
      { length: 32 },
      (_, index) =>
        `c${index}: code { id pageId ref label imageUrl createdAt scanCount lastScannedAt } r${index}: receivedAt k${index}: kind`,
    ).join(' ');
    const slow = await openStalledSubscriber(gateway.url, `subscription ($ref: String) { scanned(ref: $ref) { occurredAt ${bulk} } }`, {
      ref: 'slow',
    });
    try {
      await waitForSubscribers(gateway, 2);

      // Batches no larger than the bound, each posted once the reading subscriber has all
      // before it: its own backlog stays below the bound, only the stalled one grows.
      const posted: SimulatedScan[] = [];
      while (gateway.services.feed.subscriberCount === 2 && posted.length < 3000) {
        const batch = Array.from({ length: MAX_BACKLOG }, () => scanOf(TEST_PAGE_ID, { ref: 'slow' }));
        await post(gateway, batch);
        posted.push(...batch);
        await normal.waitForEvents(posted.length, 10_000);
      }
      await eventually(() => gateway.services.feed.subscriberCount === 1, 5000, 'the stalled subscriber to be dropped');

      // The others keep receiving after the drop.
      const after = Array.from({ length: 10 }, () => scanOf(TEST_PAGE_ID, { ref: 'slow' }));
      await post(gateway, after);
      posted.push(...after);
      await normal.waitForEvents(posted.length, 10_000);
      expect(normal.events.map(({ scanned }) => [scanned.occurredAt, scanned.code?.scanCount])).toEqual(
        posted.map((scan, index) => [occurredAt(scan), index + 1]),
      );
      expect(normal.errors).toEqual([]);
      expect(normal.completed).toBe(false);
      expect((await executeOk(gateway.url, CodeDocument, { id: code.id })).code?.scanCount).toBe(posted.length);

      // Reading again, the stalled client finds what the kernel held, then the closed connection.
      slow.resume();
      await withDeadline(slow.closed, 10_000, 'the stalled socket to close');
      expect(slow.socket.readyState).toBe(WebSocket.CLOSED);
      const delivered = slow.messages
        .filter((message) => message.type === 'next')
        .map((message) => message.payload?.data?.scanned.occurredAt);
      expect(delivered.length).toBeGreaterThan(0);
      expect(delivered.length).toBeLessThan(posted.length);
      expect(delivered).toEqual(posted.slice(0, delivered.length).map(occurredAt));
      expect(slow.largestMessage()).toBeGreaterThan(8 * 1024);
    } finally {
      slow.socket.terminate();
      await normal.close();
    }
  });
});
