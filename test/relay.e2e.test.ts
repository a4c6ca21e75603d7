import { createHmac } from 'node:crypto';
import { CreateApiKeyDocument, RegisterPageDocument, RelayTargetsDocument, UpdatePageDocument } from './generated/graphql';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases, type TestDatabase } from './support/databases';
import { FakeBot } from './support/fake-bot';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { sample, scrape } from './support/metrics';
import { TEST_APP_SECRET } from './support/webhook';
import { serializeLikeMeta } from '../src/webhook/simulated-webhook';

reportSkippedDatabases();

/**
 * The bot relay against real bots (HTTP servers on port 0). Retries are made fast through
 * configuration, never by waiting real minutes; every wait polls a condition, with the jest
 * timeout as the only limit.
 */
jest.setTimeout(90_000);

const FAST_RETRIES = {
  RELAY_RETRY_BASE_MS: '20',
  RELAY_RETRY_MAX_MS: '200',
  RELAY_TIMEOUT_MS: '1000',
  RELAY_POLL_MS: '50',
};
const ADMIN_KEY = 'relay-test-admin-key-0123456789abcdef';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const bots: FakeBot[] = [];
afterAll(async () => {
  for (const bot of bots) await bot.close();
});

async function startBot(): Promise<FakeBot> {
  const bot = await FakeBot.start();
  bots.push(bot);
  return bot;
}

/** Counts finished tests: a wait left over from a test that timed out stops polling (and lets jest exit). */
let testsFinished = 0;
afterEach(() => {
  testsFinished += 1;
});

/** Polls until `condition` holds; the jest timeout is the only limit. */
async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  const test = testsFinished;
  while (!(await condition())) {
    if (testsFinished !== test) throw new Error('the test ended (timed out) before the condition held');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const hmac = (algorithm: 'sha256' | 'sha1', body: Buffer | string) =>
  `${algorithm}=${createHmac(algorithm, TEST_APP_SECRET).update(body).digest('hex')}`;

let sequence = 0;
function messageItem(pageId: string, text: string) {
  sequence += 1;
  return {
    sender: { id: `psid-relay-${sequence}` },
    recipient: { id: pageId },
    timestamp: 1_764_300_000_000 + sequence,
    message: { mid: `m_${sequence}`, text },
  };
}
function referralItem(pageId: string, ref: string) {
  sequence += 1;
  return {
    sender: { id: `psid-relay-${sequence}` },
    recipient: { id: pageId },
    timestamp: 1_764_300_000_000 + sequence,
    referral: { ref, source: 'MESSENGER_CODE', type: 'OPEN_THREAD' },
  };
}
function entry(pageId: string, ...messaging: unknown[]) {
  return { id: pageId, time: 1_764_300_000_000 + sequence, messaging };
}
/** A webhook body as Meta writes it: unicode escaped, `/` escaped. */
function bodyOf(...entries: unknown[]): string {
  return serializeLikeMeta({ object: 'page', entry: entries });
}

/** Posts a body signed as Meta signs it: X-Hub-Signature-256, and the SHA-1 X-Hub-Signature when asked. */
async function postWebhook(gateway: TestGateway, body: string, options: { sha1?: boolean } = {}): Promise<number> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-hub-signature-256': hmac('sha256', body) };
  if (options.sha1) headers['x-hub-signature'] = hmac('sha1', body);
  const response = await fetch(`${gateway.url}/webhook`, { method: 'POST', headers, body });
  await response.text();
  return response.status;
}

async function relayTargets(gateway: TestGateway, headers: Record<string, string> = {}) {
  return (await executeOk(gateway.url, RelayTargetsDocument, {}, headers)).relayTargets;
}

describe.each(DATABASE_KINDS)('bot relay on %s', (kind) => {
  let gateway: TestGateway;
  /** RELAY_URL's bot */
  let defaultBot: FakeBot;
  /** the bot of page PAGE_B (its relayUrl) */
  let pageBot: FakeBot;
  const PAGE_B = '2000000002';
  const PAGE_C = '2000000003';

  beforeAll(async () => {
    defaultBot = await startBot();
    pageBot = await startBot();
    gateway = await startTestGateway(kind, { RELAY_URL: defaultBot.url, ...FAST_RETRIES });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_B, relayUrl: pageBot.url } });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_C } });
  });

  it('relays a message and a referral byte for byte, with their signatures and content type, and stores the scan', async () => {
    const body = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'héllo / wörld ✓ 😀'), referralItem(TEST_PAGE_ID, 'table/7')));
    expect(body).toContain('\\u00e9'); // escaped as Meta escapes: re-serialised JSON would differ
    const scansBefore = await countRows(gateway, 'scan');
    const seen = defaultBot.accepted.length;
    expect(await postWebhook(gateway, body, { sha1: true })).toBe(200);
    expect(await countRows(gateway, 'scan')).toBe(scansBefore + 1);

    await until(() => defaultBot.accepted.length > seen);
    const [delivered] = defaultBot.accepted.slice(seen);
    expect(delivered.path).toBe('/hook');
    expect(delivered.body.equals(Buffer.from(body))).toBe(true);
    expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', body));
    // The bot checks it as it would check Meta's: HMAC of the raw bytes with the app secret.
    expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', delivered.body));
    expect(delivered.headers['x-hub-signature']).toBe(hmac('sha1', delivered.body));
    expect(delivered.headers['content-type']).toBe('application/json');
    expect(delivered.deliveryId).toMatch(UUID);
    expect(pageBot.requests.filter((request) => request.body.equals(Buffer.from(body)))).toEqual([]);
  });

  it('relays a webhook without any scan (a plain message) too', async () => {
    const body = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'just a message')));
    const scansBefore = await countRows(gateway, 'scan');
    expect(await postWebhook(gateway, body)).toBe(200);
    expect(await countRows(gateway, 'scan')).toBe(scansBefore);
    await until(() => defaultBot.accepted.some((request) => request.body.equals(Buffer.from(body))));
    const [delivered] = defaultBot.accepted.filter((request) => request.body.equals(Buffer.from(body)));
    expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', body));
    expect(delivered.headers['x-hub-signature']).toBeUndefined();
  });

  it("sends a page's entries to its own relayUrl, which wins over RELAY_URL, byte for byte when the whole request is its", async () => {
    const body = bodyOf(entry(PAGE_B, messageItem(PAGE_B, 'for bot B'), referralItem(PAGE_B, 'b-ref')));
    expect(await postWebhook(gateway, body)).toBe(200);
    await until(() => pageBot.accepted.some((request) => request.body.equals(Buffer.from(body))));
    const [delivered] = pageBot.accepted.filter((request) => request.body.equals(Buffer.from(body)));
    expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', body));
    expect(defaultBot.requests.some((request) => request.body.equals(Buffer.from(body)))).toBe(false);
  });

  it('splits a batch whose entries go to different bots: each gets its entries, as Meta wrote them, re-signed with APP_SECRET', async () => {
    const entryA1 = entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'to the default bot, first / ✓'));
    const entryB = entry(PAGE_B, referralItem(PAGE_B, 'split-ref'), messageItem(PAGE_B, 'to bot B é'));
    const entryC = entry(PAGE_C, messageItem(PAGE_C, 'page C has no relayUrl: RELAY_URL'));
    const body = bodyOf(entryA1, entryB, entryC);
    const [slicedA1, slicedB, slicedC] = [entryA1, entryB, entryC].map((item) => serializeLikeMeta(item));
    const forDefault = `{"object":"page","entry":[${slicedA1},${slicedC}]}`;
    const forB = `{"object":"page","entry":[${slicedB}]}`;
    expect(await postWebhook(gateway, body, { sha1: true })).toBe(200);

    await until(() => defaultBot.accepted.some((request) => request.body.toString() === forDefault));
    await until(() => pageBot.accepted.some((request) => request.body.toString() === forB));
    for (const [bot, expected] of [
      [defaultBot, forDefault],
      [pageBot, forB],
    ] as const) {
      const [delivered] = bot.accepted.filter((request) => request.body.toString() === expected);
      expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', expected));
      expect(delivered.headers['x-hub-signature']).toBe(hmac('sha1', expected));
      expect(delivered.headers['content-type']).toBe('application/json');
      expect(delivered.deliveryId).toMatch(UUID);
    }
    // Each bot has its own delivery, with an id of its own.
    const ids = [defaultBot, pageBot].map(
      (bot) => bot.accepted.find((request) => [forDefault, forB].includes(request.body.toString()))?.deliveryId,
    );
    expect(new Set(ids).size).toBe(2);
    expect([...defaultBot.requests, ...pageBot.requests].some((request) => request.body.toString() === body)).toBe(false);
  });

  it('retries a bot that hangs, answers 500, closes the connection or redirects, with one delivery id; the webhook answers 200 meanwhile', async () => {
    defaultBot.planNextDelivery(['hang', 'error500', 'close', 'redirect']);
    const first = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'retried until the bot takes it')));
    expect(await postWebhook(gateway, first)).toBe(200);
    await until(() => defaultBot.requests.some((request) => request.answer === 'hang' && request.body.equals(Buffer.from(first))));
    const { deliveryId } = defaultBot.requests.find((request) => request.body.equals(Buffer.from(first))) as { deliveryId: string };

    // While the bot hangs on the first delivery, webhooks are answered and other deliveries go out.
    const second = bodyOf(entry(TEST_PAGE_ID, referralItem(TEST_PAGE_ID, 'during-the-hang')));
    expect(await postWebhook(gateway, second)).toBe(200);
    await until(() => defaultBot.accepted.some((request) => request.body.equals(Buffer.from(second))));

    await until(() => defaultBot.accepted.some((request) => request.deliveryId === deliveryId));
    const attempts = defaultBot.attemptsOf(deliveryId);
    expect(attempts.slice(0, 4).map((attempt) => attempt.answer)).toEqual(['hang', 'error500', 'close', 'redirect']);
    for (const attempt of attempts) {
      expect(attempt.body.equals(Buffer.from(first))).toBe(true);
      expect(attempt.headers['x-hub-signature-256']).toBe(hmac('sha256', first));
    }
    // The redirect was not followed.
    expect(defaultBot.requests.some((request) => request.path === '/redirected')).toBe(false);
    await until(async () => (await relayTargets(gateway)).every((target) => target.pending === 0));
    const metrics = (await scrape(gateway.url)).text;
    expect(sample(metrics, 'gateway_relay_failed_attempts_total')).toBeGreaterThanOrEqual(4);
    expect(sample(metrics, 'gateway_relay_delivered_total')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'gateway_relay_pending')).toBe(0);
  });

  it('relayTargets: pending, oldestPendingAt and lastError while a bot fails, then delivered once it recovers', async () => {
    const failing = await startBot();
    const PAGE_D = '2000000004';
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_D, relayUrl: failing.url } });
    expect((await relayTargets(gateway)).find((target) => target.url === failing.url)).toEqual({
      url: failing.url,
      pending: 0,
      delivered: 0,
      givenUp: 0,
      oldestPendingAt: null,
      lastError: null,
    });
    failing.planNextDelivery(Array<'error500'>(1_000_000).fill('error500'));
    const before = Date.now();
    expect(await postWebhook(gateway, bodyOf(entry(PAGE_D, messageItem(PAGE_D, 'to a failing bot'))))).toBe(200);
    await until(async () => (await relayTargets(gateway)).find((target) => target.url === failing.url)?.lastError === 'HTTP 500');
    const target = (await relayTargets(gateway)).find((item) => item.url === failing.url);
    expect(target).toMatchObject({ pending: 1, delivered: 0, givenUp: 0, lastError: 'HTTP 500' });
    expect(Date.parse(target?.oldestPendingAt as string)).toBeGreaterThanOrEqual(before - 1000);
    expect(sample((await scrape(gateway.url)).text, 'gateway_relay_pending')).toBeGreaterThanOrEqual(1);

    failing.recover();
    await until(async () => (await relayTargets(gateway)).find((item) => item.url === failing.url)?.delivered === 1);
    expect((await relayTargets(gateway)).find((item) => item.url === failing.url)).toEqual({
      url: failing.url,
      pending: 0,
      delivered: 1,
      givenUp: 0,
      oldestPendingAt: null,
      lastError: null,
    });
    // RELAY_URL and the other bots are listed too, by URL.
    const urls = (await relayTargets(gateway)).map((item) => item.url);
    expect(urls).toEqual([...urls].sort());
    expect(urls).toEqual(expect.arrayContaining([defaultBot.url, pageBot.url, failing.url]));
  });

  it('a hanging bot holds at most RELAY_CONCURRENCY_PER_URL slots: the other bots are served meanwhile', async () => {
    const hanging = await startBot();
    const healthy = await startBot();
    const [PAGE_H, PAGE_G] = ['2000000005', '2000000006'];
    // Attempts hang for longer than the test: only a free slot lets the healthy bot's delivery out.
    const narrow = await startTestGateway(kind, {
      ...FAST_RETRIES,
      RELAY_TIMEOUT_MS: '120000',
      RELAY_CONCURRENCY: '3',
      RELAY_CONCURRENCY_PER_URL: '2',
    });
    await executeOk(narrow.url, RegisterPageDocument, { input: { id: PAGE_H, relayUrl: hanging.url } });
    await executeOk(narrow.url, RegisterPageDocument, { input: { id: PAGE_G, relayUrl: healthy.url } });
    for (let index = 0; index < 4; index++) {
      hanging.planNextDelivery(['hang']);
      expect(await postWebhook(narrow, bodyOf(entry(PAGE_H, messageItem(PAGE_H, `hung ${index}`))))).toBe(200);
    }
    await until(() => hanging.requests.length === 2);
    const body = bodyOf(entry(PAGE_G, messageItem(PAGE_G, 'served beside a hanging bot')));
    expect(await postWebhook(narrow, body)).toBe(200);
    await until(() => healthy.accepted.some((request) => request.body.equals(Buffer.from(body))));
    expect(hanging.requests).toHaveLength(2);
    const target = (await relayTargets(narrow)).find((item) => item.url === hanging.url);
    expect(target).toMatchObject({ pending: 4, delivered: 0 });
  });

  it('a relayUrl changed with updatePage applies to the next webhook', async () => {
    const moved = await startBot();
    await executeOk(gateway.url, UpdatePageDocument, { input: { id: PAGE_C, relayUrl: moved.url } });
    const body = bodyOf(entry(PAGE_C, messageItem(PAGE_C, 'after the move')));
    expect(await postWebhook(gateway, body)).toBe(200);
    await until(() => moved.accepted.some((request) => request.body.equals(Buffer.from(body))));
    await executeOk(gateway.url, UpdatePageDocument, { input: { id: PAGE_C, relayUrl: null } });
  });

  it('without RELAY_URL, entries of pages with no relayUrl are not relayed; ADMIN only sees relayTargets', async () => {
    const bot = await startBot();
    const quiet = await startTestGateway(kind, { ...FAST_RETRIES, ADMIN_API_KEY: ADMIN_KEY });
    const admin = { authorization: `Bearer ${ADMIN_KEY}` };
    await executeOk(quiet.url, RegisterPageDocument, { input: { id: PAGE_B, relayUrl: bot.url } }, admin);

    const unrelayed = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'nobody relays this'), referralItem(TEST_PAGE_ID, 'r')));
    expect(await postWebhook(quiet, unrelayed)).toBe(200);
    // The outbox is committed before the 200: nothing there means nothing will be sent.
    expect(Number((await quiet.db.dataSource.query('SELECT COUNT(*) AS n FROM relay_delivery'))[0].n)).toBe(0);

    const mine = entry(PAGE_B, messageItem(PAGE_B, 'only this entry is relayed'));
    const body = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'not relayed')), mine);
    expect(await postWebhook(quiet, body)).toBe(200);
    const expected = `{"object":"page","entry":[${serializeLikeMeta(mine)}]}`;
    await until(() => bot.accepted.some((request) => request.body.toString() === expected));
    const [delivered] = bot.accepted.filter((request) => request.body.toString() === expected);
    expect(delivered.headers['x-hub-signature-256']).toBe(hmac('sha256', expected));
    expect(bot.requests).toHaveLength(1);

    await until(async () => (await relayTargets(quiet, admin)).every((target) => target.pending === 0));
    expect(await relayTargets(quiet, admin)).toEqual([
      { url: bot.url, pending: 0, delivered: 1, givenUp: 0, oldestPendingAt: null, lastError: null },
    ]);

    for (const role of ['VIEWER', 'EDITOR'] as const) {
      const { createApiKey } = await executeOk(quiet.url, CreateApiKeyDocument, { input: { name: `relay-${role}`, role } }, admin);
      const refused = await execute(quiet.url, RelayTargetsDocument, {}, { authorization: `Bearer ${createApiKey.key}` });
      expect(refused.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      expect(refused.data?.relayTargets).toBeUndefined();
    }
    const anonymous = await execute(quiet.url, RelayTargetsDocument, {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('gives a dead bot up after RELAY_GIVE_UP_AFTER_MS: kept, counted, logged', async () => {
    const dead = await FakeBot.start();
    await dead.close(); // its port now refuses connections
    const giving = await startTestGateway(kind, { ...FAST_RETRIES, RELAY_URL: dead.url, RELAY_GIVE_UP_AFTER_MS: '300' });
    expect(await postWebhook(giving, bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'to a dead bot'))))).toBe(200);
    await until(async () => (await relayTargets(giving))[0]?.givenUp === 1);
    const [target] = await relayTargets(giving);
    expect(target).toMatchObject({ url: dead.url, pending: 0, delivered: 0, givenUp: 1, oldestPendingAt: null });
    expect(target.lastError).toMatch(/^connection failed: /);
    const rows: { state: string }[] = await giving.db.dataSource.query('SELECT state FROM relay_delivery');
    expect(rows).toEqual([{ state: 'given_up' }]);
    const metrics = (await scrape(giving.url)).text;
    expect(sample(metrics, 'gateway_relay_given_up_total')).toBe(1);
    expect(sample(metrics, 'gateway_relay_failed_attempts_total')).toBeGreaterThanOrEqual(1);
    expect(giving.logs.text).toContain('relay: delivery given up');
    expect(giving.logs.text).not.toContain('/hook');
  });

  it('prunes delivered rows after RELAY_KEEP_DELIVERED_MS; their count stays', async () => {
    const bot = await startBot();
    const pruning = await startTestGateway(kind, { ...FAST_RETRIES, RELAY_URL: bot.url, RELAY_KEEP_DELIVERED_MS: '0' });
    expect(await postWebhook(pruning, bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'delivered, then pruned'))))).toBe(200);
    await until(() => bot.accepted.length === 1);
    await until(async () => Number((await pruning.db.dataSource.query('SELECT COUNT(*) AS n FROM relay_delivery'))[0].n) === 0);
    expect(await relayTargets(pruning)).toEqual([
      { url: bot.url, pending: 0, delivered: 1, givenUp: 0, oldestPendingAt: null, lastError: null },
    ]);
  });

  it('prunes given-up rows after RELAY_KEEP_GIVEN_UP_MS, not before; their count stays', async () => {
    const dead = await FakeBot.start();
    const deadUrl = dead.url;
    await dead.close();
    const keeping = await startTestGateway(kind, { ...FAST_RETRIES, RELAY_URL: deadUrl, RELAY_GIVE_UP_AFTER_MS: '300' });
    const pruning = await startTestGateway(kind, {
      ...FAST_RETRIES,
      RELAY_URL: deadUrl,
      RELAY_GIVE_UP_AFTER_MS: '300',
      RELAY_KEEP_GIVEN_UP_MS: '0',
    });
    for (const gateway of [keeping, pruning]) {
      expect(await postWebhook(gateway, bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'to a dead bot'))))).toBe(200);
    }
    await until(async () => (await relayTargets(keeping))[0]?.givenUp === 1);
    await until(async () => (await relayTargets(pruning))[0]?.givenUp === 1);
    await until(async () => Number((await pruning.db.dataSource.query('SELECT COUNT(*) AS n FROM relay_delivery'))[0].n) === 0);
    expect(await relayTargets(pruning)).toEqual([
      {
        url: deadUrl,
        pending: 0,
        delivered: 0,
        givenUp: 1,
        oldestPendingAt: null,
        lastError: expect.stringMatching(/^connection failed: /),
      },
    ]);
    // By default a given-up delivery is kept a week, its body with it, for whoever looks into it.
    const kept: { state: string }[] = await keeping.db.dataSource.query('SELECT state FROM relay_delivery');
    expect(kept).toEqual([{ state: 'given_up' }]);
  });

  describe('two gateways on one database', () => {
    let database: TestDatabase;

    beforeAll(async () => {
      database = await createTestDatabase(kind);
    });
    afterAll(async () => {
      await database.dispose();
    });

    it('a delivery in flight when its gateway stops is handed back and sent, with the same id, by the next one', async () => {
      const bot = await startBot();
      const env = { ...FAST_RETRIES, RELAY_URL: bot.url, RELAY_TIMEOUT_MS: '60000' };
      const first = await startTestGateway(database, env);
      bot.planNextDelivery(['hang']);
      const body = bodyOf(entry(TEST_PAGE_ID, referralItem(TEST_PAGE_ID, 'across-a-restart')));
      expect(await postWebhook(first, body)).toBe(200);
      await until(() => bot.requests.length === 1);
      await first.stop();
      expect(bot.accepted).toHaveLength(0);

      const second = await startTestGateway(database, env);
      await until(() => bot.accepted.length === 1);
      expect(bot.accepted[0].deliveryId).toBe(bot.requests[0].deliveryId);
      expect(bot.accepted[0].body.equals(Buffer.from(body))).toBe(true);
      await until(async () => (await relayTargets(second))[0]?.delivered === 1);
    });

    it('a delivery claimed by a process that died is sent once its lease is over, with its id', async () => {
      const bot = await startBot();
      const env = { ...FAST_RETRIES, RELAY_URL: bot.url };
      const survivor = await startTestGateway(database, env);
      // What a process killed mid-delivery leaves: a pending row under its lease, which has run out.
      const body = bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, 'orphaned by a crash')));
      const p = (n: number) => (kind === 'postgres' ? `$${n}` : '?');
      await survivor.db.dataSource.query(
        `INSERT INTO relay_delivery (id, url, body, content_type, signature_256, state, attempts, created_at, next_attempt_at, lease)
         VALUES (${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(p).join(', ')})`,
        [
          '00000000-0000-4000-8000-00000000dead',
          bot.url,
          Buffer.from(body),
          'application/json',
          hmac('sha256', body),
          'pending',
          0,
          Date.now(),
          Date.now() - 1,
          'lease-of-a-dead-process',
        ],
      );
      await until(() => bot.accepted.some((request) => request.deliveryId === '00000000-0000-4000-8000-00000000dead'));
      expect(
        bot.accepted.find((request) => request.deliveryId === '00000000-0000-4000-8000-00000000dead')?.body.equals(Buffer.from(body)),
      ).toBe(true);
    });

    it('share the outbox: every delivery goes out, whichever gateway took the webhook', async () => {
      const bot = await startBot();
      const env = { ...FAST_RETRIES, RELAY_URL: bot.url };
      const pair = [await startTestGateway(database, env), await startTestGateway(database, env)];
      const bodies = Array.from({ length: 12 }, (_, index) => bodyOf(entry(TEST_PAGE_ID, messageItem(TEST_PAGE_ID, `message ${index}`))));
      const statuses = await Promise.all(bodies.map((body, index) => postWebhook(pair[index % 2], body)));
      expect(statuses).toEqual(bodies.map(() => 200));
      await until(() => new Set(bot.accepted.map((request) => request.deliveryId)).size === bodies.length);
      const received = new Set(bot.accepted.map((request) => request.body.toString()));
      expect(bodies.every((body) => received.has(body))).toBe(true);
    });
  });
});
