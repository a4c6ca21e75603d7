/**
 * Resumable live scans: `Scan.streamCursor` and `scanned(after:)`. A subscriber that
 * comes back with its last cursor first receives every matching scan stored meanwhile,
 * in storage order, then the live ones: no gap, no duplicate, whichever instance stored
 * them and whether or not Redis carried them.
 */
import { randomInt } from 'node:crypto';
import { print, type GraphQLFormattedError } from 'graphql';
import type { Gateway } from '../src/app/gateway';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import {
  CreateApiKeyDocument,
  GenerateCodeDocument,
  RegisterPageDocument,
  ScanCursorsDocument,
  ScannedAfterDocument,
  ScansDocument,
  type ScannedAfterSubscription,
} from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases, type DatabaseKind } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { eventually, TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { hostAndPort, startTcpProxy, type TcpProxy } from './support/tcp-proxy';
import { postScans, scanOf } from './support/webhook';

reportSkippedDatabases();

const SCANNED_AFTER = print(ScannedAfterDocument);
const redisUrl = process.env.TEST_REDIS_URL;
/** A bound for what the gateway does on its own (its stream check runs every 2 s), not a speed assertion. */
const FEED_WAIT_MS = 20_000;

type Delivered = ScannedAfterSubscription['scanned'];
type Variables = { pageId?: string; codeId?: string; ref?: string; after?: string };

async function post(gateway: Gateway, scans: SimulatedScan[]): Promise<void> {
  expect(await postScans(gateway.url, scans)).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
}

/** The ids of the stored scans of `ref`, in storage order, after the scan `afterId` (or all). */
async function storedOrder(gateway: Gateway, ref: string, afterId?: string): Promise<string[]> {
  const p = (n: number) => gateway.db.param(n);
  const rows: { id: string }[] = await gateway.db.dataSource.query(`SELECT id FROM scan WHERE ref = ${p(1)} ORDER BY stream_seq`, [ref]);
  const ids = rows.map((row) => row.id);
  return afterId === undefined ? ids : ids.slice(ids.indexOf(afterId) + 1);
}

const ids = (events: { scanned: Delivered }[]) => events.map((event) => event.scanned.id);

function errorsOf(subscriber: TestSubscriber<ScannedAfterSubscription>): GraphQLFormattedError[] {
  return subscriber.errors.flatMap((error) => (Array.isArray(error) ? error : [error])) as GraphQLFormattedError[];
}

/** A ref of this test alone. */
const freshRef = (what: string) => `${what}-${randomInt(1_000_000_000)}`;

describe.each(DATABASE_KINDS)('resumable scans on %s', (kind) => {
  let gateway: TestGateway;
  let cleanups: (() => Promise<void> | void)[] = [];

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });
  afterEach(async () => {
    await Promise.all(cleanups.map((cleanup) => cleanup()));
    cleanups = [];
    await eventually(() => gateway.services.feed.subscriberCount === 0, 5000, 'subscribers of the previous test to be gone');
  });

  function subscribe(variables: Variables, on: Gateway = gateway, headers: Record<string, unknown> = {}) {
    const subscriber = TestSubscriber.open<ScannedAfterSubscription>(on.url, SCANNED_AFTER, variables, headers);
    cleanups.push(() => subscriber.close());
    return subscriber;
  }

  it('replays every scan stored after the cursor, in storage order, then continues live, each once', async () => {
    const ref = freshRef('resume');
    await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref }, imageSize: 100 } });
    const first = subscribe({ ref });
    await waitForSubscribers(gateway, 1);
    await post(gateway, [scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref })]);
    await first.waitForEvents(2);
    const last = first.events[1].scanned;
    await first.close();

    // Stored while nobody listened: two requests, one of them a batch, and a redelivery.
    const missed = [scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref })];
    await post(gateway, missed.slice(0, 1));
    await post(gateway, missed.slice(1));
    await post(gateway, missed.slice(0, 2)); // redelivered: stored once, so replayed once

    const resumed = subscribe({ ref, after: last.streamCursor });
    await resumed.waitForEvents(3);
    const live = [scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref })];
    await post(gateway, live);
    await resumed.waitForEvents(5);

    const expected = await storedOrder(gateway, ref, last.id);
    expect(expected).toHaveLength(5);
    expect(ids(resumed.events)).toEqual(expected);
    // Nothing more comes: a scan of another ref arrives, and still only five.
    await post(gateway, [scanOf(TEST_PAGE_ID, { ref: freshRef('other') })]);
    const marker = subscribe({});
    await waitForSubscribers(gateway, 2);
    await post(gateway, [scanOf(TEST_PAGE_ID, { ref })]);
    await resumed.waitForEvents(6);
    await marker.waitForEvents(1);
    expect(ids(resumed.events)).toEqual(await storedOrder(gateway, ref, last.id));
    expect(resumed.errors).toEqual([]);
    // Replayed scans carry the code as it is now; live ones the count right after them.
    expect(resumed.events[5].scanned.code?.scanCount).toBe(8);
  });

  it('a cursor increases in storage order, and is the same listed and delivered live', async () => {
    const ref = freshRef('cursor');
    const subscriber = subscribe({ ref });
    await waitForSubscribers(gateway, 1);
    await post(gateway, [scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref })]);
    await post(gateway, [scanOf(TEST_PAGE_ID, { ref })]);
    await subscriber.waitForEvents(3);
    const listed = await executeOk(gateway.url, ScanCursorsDocument, { pageId: TEST_PAGE_ID, first: 100 });
    const cursorOf = new Map(listed.scans.edges.map(({ node }) => [node.id, node.streamCursor]));
    for (const { scanned } of subscriber.events) expect(cursorOf.get(scanned.id)).toBe(scanned.streamCursor);
    // Resuming from each cursor gives exactly what followed it.
    const order = await storedOrder(gateway, ref);
    for (const [index, { scanned }] of subscriber.events.entries()) {
      const resumed = subscribe({ ref, after: scanned.streamCursor });
      const expected = order.slice(order.indexOf(scanned.id) + 1);
      await resumed.waitForEvents(expected.length);
      expect({ index, ids: ids(resumed.events) }).toEqual({ index, ids: expected });
      await resumed.close();
    }
  });

  it('replays only what the filter and the key allow: codeId, and a VIEWER key of another page', async () => {
    const otherPage = `77${randomInt(1_000_000, 9_999_999)}`;
    // A database of its own: the first key locks the gateway it is created on.
    const admin = await startTestGateway(kind, { ADMIN_API_KEY: 'resume-admin-key', PAGE_ID: TEST_PAGE_ID });
    const asAdmin = { authorization: 'Bearer resume-admin-key' };
    await executeOk(admin.url, RegisterPageDocument, { input: { id: otherPage, name: 'Other' } }, asAdmin);
    const viewer = (
      await executeOk(
        admin.url,
        CreateApiKeyDocument,
        { input: { name: 'other page wall', role: 'VIEWER', pageIds: [otherPage] } },
        asAdmin,
      )
    ).createApiKey.key;
    const ref = freshRef('scoped');
    const code = (await executeOk(admin.url, GenerateCodeDocument, { input: { data: { ref }, imageSize: 100 } }, asAdmin)).generateCode;

    const start = subscribe({}, admin, { authorization: 'Bearer resume-admin-key' });
    await waitForSubscribers(admin, 1);
    await post(admin, [scanOf(TEST_PAGE_ID, { ref: freshRef('before') })]);
    await start.waitForEvents(1);
    const cursor = start.events[0].scanned.streamCursor;

    const ours = [scanOf(TEST_PAGE_ID, { ref }), scanOf(TEST_PAGE_ID, { ref })];
    const theirs = [scanOf(otherPage, { ref }), scanOf(otherPage, { ref: freshRef('theirs') })];
    await post(admin, [ours[0], theirs[0], scanOf(TEST_PAGE_ID, { ref: freshRef('noise') })]);
    await post(admin, [theirs[1], ours[1]]);

    const byCode = subscribe({ codeId: code.id, after: cursor }, admin, { authorization: 'Bearer resume-admin-key' });
    const byViewer = subscribe({ after: cursor }, admin, { authorization: `Bearer ${viewer}` });
    await byCode.waitForEvents(2);
    await byViewer.waitForEvents(2);
    expect(byCode.events.map((event) => [event.scanned.pageId, event.scanned.ref])).toEqual([
      [TEST_PAGE_ID, ref],
      [TEST_PAGE_ID, ref],
    ]);
    expect(byViewer.events.map((event) => event.scanned.pageId)).toEqual([otherPage, otherPage]);
    // The viewer asking for the default page by name is refused, replay or not.
    const refused = subscribe({ pageId: TEST_PAGE_ID, after: cursor }, admin, { authorization: `Bearer ${viewer}` });
    await refused.waitFor((s) => s.errors.length > 0 || s.completed, 10_000, 'the refusal');
    expect(errorsOf(refused)[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(refused.events).toEqual([]);
    await admin.stop();
  });

  it.each([
    ['not base64 JSON', 'nope'],
    ['a cursor of the scans list', null],
    ['a negative position', Buffer.from(JSON.stringify(['STORED', -1])).toString('base64url')],
    ['a fractional position', Buffer.from(JSON.stringify(['STORED', 1.5])).toString('base64url')],
    ['a string position', Buffer.from(JSON.stringify(['STORED', '3'])).toString('base64url')],
  ])('a malformed cursor (%s) is BAD_USER_INPUT on after', async (_what, cursor) => {
    let after = cursor;
    if (after === null) {
      await post(gateway, [scanOf(TEST_PAGE_ID, { ref: freshRef('list') }), scanOf(TEST_PAGE_ID, { ref: freshRef('list') })]);
      const listed = await executeOk(gateway.url, ScansDocument, { pageId: TEST_PAGE_ID, first: 1 });
      after = listed.scans.pageInfo.endCursor as string;
    }
    const subscriber = subscribe({ after });
    await subscriber.waitFor((s) => s.errors.length > 0 || s.completed, 10_000, 'the refusal');
    const [error] = errorsOf(subscriber);
    expect(error?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'after' });
    expect(subscriber.events).toEqual([]);
  });
});

/** describe.each over `kinds`, or one skipped test saying why when there is none. */
function describeOn(kinds: DatabaseKind[], name: string, why: string, suite: (kind: DatabaseKind) => void): void {
  if (kinds.length === 0) test.skip(`${name.replace(' on %s', '')} (skipped: ${why})`, () => undefined);
  else describe.each(kinds)(name, suite);
}

const postgresKinds = DATABASE_KINDS.filter((kind) => kind === 'postgres');
describeOn(postgresKinds, 'storage order with two instances on %s', 'TEST_DATABASE_URL is not set', (kind) => {
  it('is a total order: a reader polling during concurrent ingest on two instances never sees a position before one it has seen', async () => {
    const a = await startTestGateway(kind);
    const b = await startTestGateway(a.database);
    const ref = freshRef('order');
    let seen = 0;
    let reading = true;
    const violations: string[] = [];
    const reader = (async () => {
      while (reading) {
        const rows: { stream_seq: string }[] = await a.db.dataSource.query(
          'SELECT stream_seq FROM scan WHERE stream_seq > $1 ORDER BY stream_seq',
          [seen],
        );
        for (const row of rows) {
          const position = Number(row.stream_seq);
          // Contiguous: a position appears only after every position below it has.
          if (position !== seen + 1) violations.push(`saw ${position} right after ${seen}`);
          seen = position;
        }
      }
    })();
    const senders = Array.from({ length: 16 }, (_, sender) =>
      (async () => {
        for (let request = 0; request < 15; request++) {
          const batch = Array.from({ length: 1 + (request % 3) }, () => scanOf(TEST_PAGE_ID, { ref }));
          await post(sender % 2 === 0 ? a : b, batch);
        }
      })(),
    );
    await Promise.all(senders);
    const total = (await storedOrder(a, ref)).length;
    await eventually(() => seen >= total, 10_000, 'the reader to see every scan');
    reading = false;
    await reader;
    expect(violations).toEqual([]);
    expect(seen).toBe(total);
    expect(total).toBe(16 * (5 * 1 + 5 * 2 + 5 * 3));
  });
});

describeOn(
  redisUrl ? postgresKinds : [],
  'resuming across two instances and a Redis outage on %s',
  'needs TEST_DATABASE_URL and TEST_REDIS_URL',
  (kind) => {
    let proxy: TcpProxy;
    let a: TestGateway;
    let b: TestGateway;
    const pageId = `88${Date.now()}${randomInt(1000, 9999)}`;

    beforeAll(async () => {
      proxy = await startTcpProxy(hostAndPort(redisUrl as string));
      const env = { PAGE_ID: pageId, REDIS_URL: `redis://127.0.0.1:${proxy.port}` };
      a = await startTestGateway(kind, env);
      b = await startTestGateway(a.database, env);
    });
    afterAll(async () => {
      proxy.restore();
      await proxy.close();
    });
    beforeEach(async () => {
      // Each test counts its own subscribers from zero.
      await eventually(
        () => a.services.feed.subscriberCount + b.services.feed.subscriberCount === 0,
        5000,
        'earlier subscribers to be gone',
      );
    });

    it('a live subscriber on one instance receives, once and in storage order, what both stored while Redis was cut', async () => {
      const ref = freshRef('outage');
      const watcher = TestSubscriber.open<ScannedAfterSubscription>(a.url, SCANNED_AFTER, { ref });
      await waitForSubscribers(a, 1);
      await post(b, [scanOf(pageId, { ref })]);
      await watcher.waitForEvents(1, FEED_WAIT_MS);

      proxy.cutAll();
      const during = [];
      for (let request = 0; request < 6; request++) {
        const scans = [scanOf(pageId, { ref }), scanOf(pageId, { ref })];
        during.push(...scans);
        await post(request % 2 === 0 ? a : b, scans);
      }
      // Redis is not on the durability path: everything is stored, and reaches the watcher
      // through the database (the feed notices what it missed), in storage order.
      await watcher.waitForEvents(13, FEED_WAIT_MS);
      proxy.restore();
      await post(b, [scanOf(pageId, { ref })]);
      await watcher.waitForEvents(14, FEED_WAIT_MS);
      expect(ids(watcher.events)).toEqual(await storedOrder(a, ref));
      await watcher.close();
    });

    it('a subscriber that resumes on the other instance gets every scan both stored meanwhile, once, in storage order', async () => {
      const ref = freshRef('handover');
      const first = TestSubscriber.open<ScannedAfterSubscription>(a.url, SCANNED_AFTER, { ref });
      await waitForSubscribers(a, 1);
      await post(a, [scanOf(pageId, { ref })]);
      await first.waitForEvents(1, FEED_WAIT_MS);
      const cursor = first.events[0].scanned.streamCursor;
      await first.close();

      proxy.cutAll();
      await Promise.all(
        Array.from({ length: 8 }, (_, sender) =>
          (async () => {
            for (let request = 0; request < 3; request++) await post(sender % 2 === 0 ? a : b, [scanOf(pageId, { ref })]);
          })(),
        ),
      );
      const resumed = TestSubscriber.open<ScannedAfterSubscription>(b.url, SCANNED_AFTER, { ref, after: cursor });
      await resumed.waitForEvents(24, FEED_WAIT_MS);
      proxy.restore();
      await post(a, [scanOf(pageId, { ref }), scanOf(pageId, { ref })]);
      await resumed.waitForEvents(26, FEED_WAIT_MS);
      const expected = (await storedOrder(a, ref)).slice(1);
      expect(ids(resumed.events)).toEqual(expected);
      await resumed.close();
    });
  },
);
