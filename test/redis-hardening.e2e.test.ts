/**
 * Issue 8, "One Redis message crashes every instance": whoever can reach Redis can
 * publish on the scan channel. Raw messages published there with a plain client must
 * neither stop a gateway nor reach a subscriber unless an instance sharing APP_SECRET
 * signed them; each dropped message is counted on /metrics.
 */
import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { print } from 'graphql';
import Redis from 'ioredis';
import type { Gateway } from '../src/app/gateway';
import { deriveFeedKey, encodeFeedMessage, MAX_FEED_MESSAGE_BYTES, type ScanEvent } from '../src/scans/scan-feed';
import { ScanKind } from '../src/scans/scan-kind';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { ScannedDocument, type ScannedSubscription } from './generated/graphql';
import { startTestGateway, TEST_REDIS_PREFIX, type TestGateway } from './support/gateway';
import { eventually, TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf, TEST_APP_SECRET } from './support/webhook';

const redisUrl = process.env.TEST_REDIS_URL;

const CHANNEL = `${TEST_REDIS_PREFIX}scans`;
const SCANNED = print(ScannedDocument);
const REASONS = ['unauthenticated', 'malformed', 'too_large'] as const;
type Reason = (typeof REASONS)[number];

/** A page id of this run alone: every gateway on this Redis shares one channel. */
const uniquePageId = () => `${Date.now()}${randomInt(100_000, 1_000_000)}`;

const occurredAt = (scan: SimulatedScan) => new Date(scan.timestamp).toISOString();
const received = (subscriber: TestSubscriber<ScannedSubscription>, scan: SimulatedScan) =>
  subscriber.events.some((event) => event.scanned.occurredAt === occurredAt(scan));

async function post(gateway: Gateway, scans: SimulatedScan[], secret = TEST_APP_SECRET): Promise<void> {
  expect(await postScans(gateway.url, scans, secret)).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
}

async function rejectedCounts(gateway: Gateway): Promise<Record<Reason, number>> {
  const response = await fetch(`${gateway.url}/metrics`);
  expect(response.status).toBe(200);
  const text = await response.text();
  const counts = {} as Record<Reason, number>;
  for (const reason of REASONS) {
    const line = text.split('\n').find((candidate) => candidate.startsWith(`gateway_feed_messages_rejected_total{reason="${reason}"} `));
    counts[reason] = line === undefined ? Number.NaN : Number(line.split(' ')[1]);
  }
  return counts;
}

/** Waits until each gateway's rejection counters have risen by exactly `delta` since `before`. */
async function waitForRejections(gateways: Gateway[], before: Record<Reason, number>[], delta: Record<Reason, number>): Promise<void> {
  const expected = before.map((counts) => Object.fromEntries(REASONS.map((reason) => [reason, counts[reason] + delta[reason]])));
  await eventually(
    async () => {
      const now = await Promise.all(gateways.map(rejectedCounts));
      return now.every((counts, index) => REASONS.every((reason) => counts[reason] >= expected[index][reason]));
    },
    10_000,
    'the rejected messages to be counted',
  );
  expect(await Promise.all(gateways.map(rejectedCounts))).toEqual(expected);
}

/** A scan event as an attacker would forge it: well-formed, for the page the dashboards watch. */
function forgedEvent(pageId: string, index: number, ref = 'forged'): ScanEvent {
  const now = Date.now();
  return {
    scan: {
      id: `forged-${index}-${randomBytes(6).toString('hex')}`,
      pageId,
      ref,
      kind: ScanKind.REFERRAL,
      source: 'SHORTLINK',
      occurredAt: now,
      receivedAt: now,
      streamSeq: index,
    },
    code: null,
  };
}

/** A frame in the feed's format (see encodeFeedMessage) around any JSON text, signed with `key`. */
function signedFrame(key: Buffer, json: string): Buffer {
  return Buffer.from(`mcg1.${createHmac('sha256', key).update(json).digest('hex')}.${json}`);
}

if (!redisUrl) {
  test.skip('Redis scan channel hardening (skipped: TEST_REDIS_URL is not set)', () => undefined);
} else {
  describe('two gateways on one Redis, and raw messages published on their channel', () => {
    const pageId = uniquePageId();
    let a: TestGateway;
    let b: TestGateway;
    let redis: Redis;
    let onA: TestSubscriber<ScannedSubscription>;
    let onB: TestSubscriber<ScannedSubscription>;

    beforeAll(async () => {
      const env = { PAGE_ID: pageId, REDIS_URL: redisUrl, LOG_LEVEL: 'warn' };
      a = await startTestGateway('sqlite', env);
      b = await startTestGateway(a.database, env);
      redis = new Redis(redisUrl);
      onA = TestSubscriber.open<ScannedSubscription>(a.url, SCANNED, { pageId });
      onB = TestSubscriber.open<ScannedSubscription>(b.url, SCANNED, { pageId });
      await waitForSubscribers(a, 1);
      await waitForSubscribers(b, 1);
      // Both listeners are subscribed once a scan posted to each has reached the other. A
      // listener's SUBSCRIBE may still be on its way (a busy machine): a scan published before
      // it is lost for it, so another is posted until one arrives.
      await crossDelivered(a, onB, 'A at B');
      await crossDelivered(b, onA, 'B at A');
    });

    async function crossDelivered(from: TestGateway, at: TestSubscriber<ScannedSubscription>, what: string): Promise<void> {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const scan = scanOf(pageId, { ref: 'warm-up' });
        await post(from, [scan]);
        try {
          await at.waitFor((s) => received(s, scan), 2_000, `a warm-up scan posted to ${what}`);
          return;
        } catch (error) {
          if (Date.now() > deadline) throw error;
        }
      }
    }

    afterAll(async () => {
      await Promise.all([onA?.close(), onB?.close()]);
      await redis?.quit();
    });

    it('drops unsigned, forged, malformed and oversized messages: both stay up, no subscriber sees them, each is counted', async () => {
      const before = await Promise.all([a, b].map(rejectedCounts));
      const seenByA = onA.events.length;
      const seenByB = onB.events.length;
      const key = deriveFeedKey({ appSecret: TEST_APP_SECRET }) as Buffer;
      const wrongKey = deriveFeedKey({ appSecret: 'not-the-shared-secret' }) as Buffer;
      const forged = (index: number) => ({ origin: 'attacker', events: [forgedEvent(pageId, index)] });

      const unauthenticated = [
        // The message that made every instance exit 1.
        Buffer.from('{"events":[{}]}'),
        randomBytes(2048),
        // Well-formed, in the format the gateways used to trust.
        Buffer.from(JSON.stringify(forged(1))),
        // Well-formed, in today's frame, with a MAC that is not one.
        Buffer.from(`mcg1.${'ab'.repeat(32)}.${JSON.stringify(forged(2))}`),
        // Well-formed, signed with another secret.
        encodeFeedMessage(wrongKey, forged(3)),
      ];
      const malformed = [
        // Signed (a peer with the secret, or a bug), but not a batch of scans: validated, never read blindly.
        signedFrame(key, '{"events":[{}]}'),
        signedFrame(
          key,
          JSON.stringify({ origin: 'attacker', events: [forgedEvent(pageId, 4), { ...forgedEvent(pageId, 5), code: 'x' }] }),
        ),
        signedFrame(key, '{"origin":"attacker","events":[{"scan":'),
      ];
      // Correctly signed and well-formed, but larger than any instance sends: refused on its size.
      // (Receiving it makes ioredis's parser keep a buffer pool that it shrinks on a 50 ms
      // interval for ~3 s: run alone, this file makes Jest say it did not exit within 1 s.)
      const huge = Array.from({ length: 1000 }, (_, index) => forgedEvent(pageId, 100 + index, 'r'.repeat(4096)));
      const tooLarge = [encodeFeedMessage(key, { origin: 'attacker', events: huge })];
      expect(tooLarge[0].length).toBeGreaterThan(MAX_FEED_MESSAGE_BYTES);

      for (const message of [...unauthenticated, ...malformed, ...tooLarge]) await redis.publish(CHANNEL, message);

      // A real scan after them: Redis delivers in order, so once B has it, B has handled every message above.
      const marker = scanOf(pageId, { ref: 'after-the-attack' });
      await post(a, [marker]);
      await onB.waitFor((s) => received(s, marker), 10_000, 'a real scan posted to A at B after the forged messages');
      await onA.waitFor((s) => received(s, marker), 10_000, 'a real scan posted to A at A');
      expect(onB.events.slice(seenByB).map((event) => event.scanned.occurredAt)).toEqual([occurredAt(marker)]);
      expect(onA.events.slice(seenByA).map((event) => event.scanned.occurredAt)).toEqual([occurredAt(marker)]);
      expect(onB.events.slice(seenByB)[0].scanned).toMatchObject({ pageId, ref: 'after-the-attack', kind: 'REFERRAL' });
      expect([...onA.errors, ...onB.errors]).toEqual([]);

      for (const gateway of [a, b]) expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      await waitForRejections([a, b], before, { unauthenticated: unauthenticated.length, malformed: malformed.length, too_large: 1 });

      // A flood is not a flood of log lines: one warn line (the first drop), nothing at error.
      for (const gateway of [a, b]) {
        const entries = gateway.logs.entries();
        const drops = entries.filter((entry) => entry.message.startsWith('dropped a message on the redis scan channel'));
        expect(drops).toHaveLength(1);
        expect(drops[0]).toMatchObject({ level: 'warn', reason: 'unauthenticated', detail: 'not signed', droppedSincePreviousLine: 0 });
        expect(entries.filter((entry) => entry.level === 'error' || entry.level === 'fatal')).toEqual([]);
      }
    });

    it('scans of an instance with another APP_SECRET are not delivered, and are counted as unauthenticated', async () => {
      const before = await Promise.all([a, b].map(rejectedCounts));
      const seenByB = onB.events.length;
      const stranger = await startTestGateway('sqlite', { PAGE_ID: pageId, REDIS_URL: redisUrl, APP_SECRET: 'another-app-secret' });
      const onStranger = TestSubscriber.open<ScannedSubscription>(stranger.url, SCANNED, { pageId });
      try {
        await waitForSubscribers(stranger, 1);
        const foreign = scanOf(pageId, { ref: 'foreign' });
        await post(stranger, [foreign], 'another-app-secret');
        // Its own subscribers get it; it is published signed with its own key.
        await onStranger.waitFor((s) => received(s, foreign), 10_000, 'the scan at the instance that stored it');

        const marker = scanOf(pageId, { ref: 'after-the-stranger' });
        await post(a, [marker]);
        await onB.waitFor((s) => received(s, marker), 10_000, 'a real scan posted to A at B');
        expect(onB.events.slice(seenByB).map((event) => event.scanned.occurredAt)).toEqual([occurredAt(marker)]);
        await waitForRejections([a, b], before, { unauthenticated: 1, malformed: 0, too_large: 0 });
      } finally {
        await onStranger.close();
      }
    });
  });

  describe('a gateway with REDIS_URL but neither APP_SECRET nor PSID_HASH_KEY', () => {
    it('says once, at start, that Redis fan-out is off and what to set; it keeps serving', async () => {
      const gateway = await startTestGateway('sqlite', { REDIS_URL: redisUrl, APP_SECRET: '', LOG_LEVEL: 'warn' });
      const lines = gateway.logs.entries().filter((entry) => entry.message.includes('neither APP_SECRET nor PSID_HASH_KEY'));
      expect(lines).toHaveLength(1);
      expect(lines[0].level).toBe('warn');
      expect(lines[0].message).toContain('set APP_SECRET');
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      expect(await rejectedCounts(gateway)).toEqual({ unauthenticated: 0, malformed: 0, too_large: 0 });
    });
  });
}
