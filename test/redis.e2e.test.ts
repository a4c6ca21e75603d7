import { randomInt } from 'node:crypto';
import { print } from 'graphql';
import type { Gateway } from '../src/app/gateway';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { CodeDocument, GenerateCodeDocument, ScannedDocument, type ScannedSubscription } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases, type DatabaseKind } from './support/databases';
import { startTestGateway, TEST_REDIS_PREFIX, type TestGateway } from './support/gateway';
import { sample, scrape } from './support/metrics';
import { executeOk } from './support/graphql-client';
import { eventually, TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { hostAndPort, startTcpProxy, type TcpProxy } from './support/tcp-proxy';
import { postScans, scanOf } from './support/webhook';

const redisUrl = process.env.TEST_REDIS_URL;

reportSkippedDatabases();

const SCANNED = print(ScannedDocument);

const occurredAt = (scan: SimulatedScan) => new Date(scan.timestamp).toISOString();
const received = (subscriber: TestSubscriber<ScannedSubscription>, scan: SimulatedScan) =>
  subscriber.events.some((event) => event.scanned.occurredAt === occurredAt(scan));
const deliveries = (subscriber: TestSubscriber<ScannedSubscription>) =>
  subscriber.events.map(({ scanned }) => [scanned.occurredAt, scanned.code?.id, scanned.code?.scanCount]);

async function post(gateway: Gateway, scans: SimulatedScan[]): Promise<void> {
  const answer = await postScans(gateway.url, scans);
  expect(answer).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
}

async function readiness(gateway: Gateway): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${gateway.url}/readyz`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function waitUntilReady(gateways: Gateway[], ready: boolean): Promise<void> {
  const wanted = ready ? { status: 200, redis: 'ok' } : { status: 503, redis: 'unreachable' };
  await eventually(
    async () => {
      const answers = await Promise.all(gateways.map(readiness));
      return answers.every(({ status, body }) => status === wanted.status && body.redis === wanted.redis && body.database === 'ok');
    },
    10_000,
    `/readyz to report redis ${wanted.redis}`,
  );
}

/** A page id of this run alone: every gateway on this Redis shares one channel, other suites publish on it too. */
const uniquePageId = () => `${Date.now()}${randomInt(100_000, 1_000_000)}`;

/**
 * Two gateway processes' worth of server (two instances, each with its own Redis
 * connections and feed) on one fresh database of `kind` and one Redis.
 */
async function startPair(kind: DatabaseKind, pageId: string, redis: string): Promise<[TestGateway, TestGateway]> {
  const env = { PAGE_ID: pageId, REDIS_URL: redis };
  // One after the other: the second finds the migrations done by the first.
  const a = await startTestGateway(kind, env);
  const b = await startTestGateway(a.database, env);
  return [a, b];
}

/**
 * Two gateways on one fresh database whose Redis connections go through a TCP proxy
 * the test can cut and restore; `cutFirst` cuts it before they start.
 */
function useProxiedPair(kind: DatabaseKind, redisUrl: string, pageId: string, options: { cutFirst: boolean }) {
  const pair = {} as { proxy: TcpProxy; a: TestGateway; b: TestGateway };
  beforeAll(async () => {
    pair.proxy = await startTcpProxy(hostAndPort(redisUrl));
    if (options.cutFirst) pair.proxy.cutAll();
    const proxied = new URL(redisUrl);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(pair.proxy.port);
    [pair.a, pair.b] = await startPair(kind, pageId, proxied.toString());
  });
  afterAll(async () => {
    pair.proxy?.restore(); // lets the gateways say goodbye to Redis
    await Promise.all([pair.a?.stop(), pair.b?.stop()]);
    await pair.proxy?.close();
  });
  return pair;
}

describe('without REDIS_URL', () => {
  it('is ready without Redis, and /readyz does not mention it', async () => {
    const gateway = await startTestGateway('sqlite');
    expect(await readiness(gateway)).toEqual({ status: 200, body: { status: 'ready', database: 'ok' } });
  });
});

if (!redisUrl) {
  test.skip('scan fan-out through Redis (skipped: TEST_REDIS_URL is not set)', () => undefined);
} else {
  describe.each(DATABASE_KINDS)('two gateways on one %s database and Redis', (kind) => {
    let subscribers: TestSubscriber<ScannedSubscription>[] = [];
    const subscribe = (gateway: Gateway, variables: Record<string, unknown>) => {
      const subscriber = TestSubscriber.open<ScannedSubscription>(gateway.url, SCANNED, variables);
      subscribers.push(subscriber);
      return subscriber;
    };
    afterEach(async () => {
      await Promise.all(subscribers.map((subscriber) => subscriber.close()));
      subscribers = [];
    });

    describe('connected to Redis', () => {
      const pageId = uniquePageId();
      let a: TestGateway;
      let b: TestGateway;

      beforeAll(async () => {
        [a, b] = await startPair(kind, pageId, redisUrl);
      });

      it('reports Redis in /readyz', async () => {
        await waitUntilReady([a, b], true);
        for (const gateway of [a, b]) {
          expect(await readiness(gateway)).toEqual({ status: 200, body: { status: 'ready', database: 'ok', redis: 'ok' } });
        }
      });

      it('delivers a scan posted to one instance to subscribers of both, once each, with the shared counts', async () => {
        await waitUntilReady([a, b], true);
        const code = (await executeOk(a.url, GenerateCodeDocument, { input: { data: { ref: 'shared' }, imageSize: 100 } })).generateCode;
        const onA = subscribe(a, { pageId });
        const onB = subscribe(b, { pageId, codeId: code.id });
        await waitForSubscribers(a, 1);
        await waitForSubscribers(b, 1);

        const toA = scanOf(pageId, { ref: 'shared' });
        await post(a, [toA]);
        for (const subscriber of [onA, onB]) await subscriber.waitFor((s) => received(s, toA), 5000, 'the scan posted to A');
        const toB = scanOf(pageId, { ref: 'shared' });
        await post(b, [toB]);
        for (const subscriber of [onA, onB]) await subscriber.waitFor((s) => received(s, toB), 5000, 'the scan posted to B');
        // Anything delivered twice (locally and again through Redis) would have arrived before this.
        const marker = scanOf(pageId, { ref: 'shared' });
        await post(a, [marker]);
        for (const subscriber of [onA, onB]) await subscriber.waitFor((s) => received(s, marker), 5000, 'the marker');

        const expected = [
          [occurredAt(toA), code.id, 1],
          [occurredAt(toB), code.id, 2],
          [occurredAt(marker), code.id, 3],
        ];
        expect(deliveries(onA)).toEqual(expected);
        expect(deliveries(onB)).toEqual(expected);
        expect(onB.events[0].scanned).toMatchObject({ pageId, ref: 'shared', kind: 'REFERRAL', code: { lastScannedAt: occurredAt(toA) } });
        for (const gateway of [a, b]) {
          expect((await executeOk(gateway.url, CodeDocument, { id: code.id })).code?.scanCount).toBe(3);
        }
      });
    });

    describe('two deployments on one Redis, each with its own REDIS_PREFIX', () => {
      const pageId = uniquePageId();

      it("neither gets the other's scans nor counts them as forged, though both watch the same page", async () => {
        const [a] = await startPair(kind, pageId, redisUrl);
        // Another deployment: its own database and APP_SECRET, the same Redis and page id.
        const otherSecret = 'another-deployment-secret';
        const other = await startTestGateway(kind, {
          PAGE_ID: pageId,
          REDIS_URL: redisUrl,
          REDIS_PREFIX: `${TEST_REDIS_PREFIX}other:`,
          APP_SECRET: otherSecret,
        });
        await waitUntilReady([a, other], true);
        const onA = subscribe(a, { pageId });
        const onOther = subscribe(other, { pageId });
        await waitForSubscribers(a, 1);
        await waitForSubscribers(other, 1);

        const toA = scanOf(pageId, { ref: 'deployment-a' });
        await post(a, [toA]);
        const toOther = scanOf(pageId, { ref: 'deployment-other' });
        expect(await postScans(other.url, [toOther], otherSecret)).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
        await onA.waitFor((s) => received(s, toA), 5000, 'its own scan at A');
        await onOther.waitFor((s) => received(s, toOther), 5000, 'its own scan at the other deployment');
        // Each deployment's next scan: once it is delivered, anything of the other's would have been too.
        const markerA = scanOf(pageId, { ref: 'deployment-a' });
        await post(a, [markerA]);
        const markerOther = scanOf(pageId, { ref: 'deployment-other' });
        expect(await postScans(other.url, [markerOther], otherSecret)).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
        await onA.waitFor((s) => received(s, markerA), 5000, 'the marker at A');
        await onOther.waitFor((s) => received(s, markerOther), 5000, 'the marker at the other deployment');

        expect(onA.events.map((event) => event.scanned.ref)).toEqual(['deployment-a', 'deployment-a']);
        expect(onOther.events.map((event) => event.scanned.ref)).toEqual(['deployment-other', 'deployment-other']);
        for (const gateway of [a, other]) {
          const { text } = await scrape(gateway.url);
          expect(sample(text, 'gateway_feed_messages_rejected_total{reason="unauthenticated"}')).toBe(0);
        }
      });
    });

    describe('when Redis is away as the gateways start', () => {
      const pageId = uniquePageId();
      const pair = useProxiedPair(kind, redisUrl, pageId, { cutFirst: true });

      it('is not ready until Redis comes, then fans out without a restart', async () => {
        const { a, b, proxy } = pair;
        // Long enough for the clients to give up any single command: the subscription must survive it.
        await eventually(() => proxy.refused >= 8, 10_000, 'the gateways to retry Redis');
        expect((await readiness(a)).status).toBe(503);
        proxy.restore();
        await waitUntilReady([a, b], true);
        const onB = subscribe(b, { pageId });
        await waitForSubscribers(b, 1);
        const scan = scanOf(pageId, { ref: 'late-redis' });
        await post(a, [scan]);
        await onB.waitFor((s) => received(s, scan), 10_000, 'a scan posted to A at B once Redis came');
        expect(onB.errors).toEqual([]);
      });
    });

    describe('when Redis goes away and comes back', () => {
      const pageId = uniquePageId();
      const pair = useProxiedPair(kind, redisUrl, pageId, { cutFirst: false });

      it('keeps storing and delivering locally while Redis is away, and fans out again once it is back', async () => {
        const { a, b, proxy } = pair;
        await waitUntilReady([a, b], true);
        const code = (await executeOk(a.url, GenerateCodeDocument, { input: { data: { ref: 'outage' }, imageSize: 100 } })).generateCode;
        const onA = subscribe(a, { pageId });
        const onB = subscribe(b, { pageId });
        await waitForSubscribers(a, 1);
        await waitForSubscribers(b, 1);
        const before = scanOf(pageId, { ref: 'outage' });
        await post(a, [before]);
        await onB.waitFor((s) => received(s, before), 5000, 'a scan through the proxy');

        proxy.cutAll();
        await waitUntilReady([a, b], false);
        // An outage spanning several reconnection attempts of both instances' Redis clients.
        await eventually(() => proxy.refused >= 8, 10_000, 'the gateways to retry Redis while it is away');
        expect(await readiness(a)).toEqual({ status: 503, body: { status: 'unavailable', database: 'ok', redis: 'unreachable' } });

        // The database is the source of truth: webhooks are stored and acknowledged.
        const during = [scanOf(pageId, { ref: 'outage' }), scanOf(pageId, { ref: 'outage' })];
        await post(a, [during[0]]);
        await post(a, [during[1]]);
        for (const gateway of [a, b]) {
          expect((await executeOk(gateway.url, CodeDocument, { id: code.id })).code?.scanCount).toBe(3);
        }
        // Subscribers of the instance that stored them still get them.
        await onA.waitFor((s) => during.every((scan) => received(s, scan)), 5000, 'local delivery while Redis is away');
        expect(deliveries(onA)).toEqual([
          [occurredAt(before), code.id, 1],
          [occurredAt(during[0]), code.id, 2],
          [occurredAt(during[1]), code.id, 3],
        ]);

        proxy.restore();
        await waitUntilReady([a, b], true);

        const fromA = scanOf(pageId, { ref: 'outage' });
        await post(a, [fromA]);
        await onB.waitFor((s) => received(s, fromA), 10_000, 'a scan posted to A at B after Redis came back');
        expect(onB.events.at(-1)?.scanned).toMatchObject({ occurredAt: occurredAt(fromA), code: { id: code.id, scanCount: 4 } });
        const fromB = scanOf(pageId, { ref: 'outage' });
        await post(b, [fromB]);
        await onA.waitFor((s) => received(s, fromB), 10_000, 'a scan posted to B at A after Redis came back');
        expect(onA.events.at(-1)?.scanned).toMatchObject({ occurredAt: occurredAt(fromB), code: { id: code.id, scanCount: 5 } });
        expect([...onA.errors, ...onB.errors]).toEqual([]);
      });
    });
  });
}
