import { createServer, type AddressInfo } from 'node:net';
import type { GraphQLFormattedError } from 'graphql';
import Redis from 'ioredis';
import {
  CodesDocument,
  CreateApiKeyDocument,
  GenerateCodeDocument,
  type GenerateCodeInput,
  type GenerateCodeMutation,
  type Role,
} from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { FakeGraphApi } from './support/fake-graph-api';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk, type GraphQLResponse } from './support/graphql-client';
import { eventually } from './support/subscriptions';
import { hostAndPort, startTcpProxy, type TcpProxy } from './support/tcp-proxy';

reportSkippedDatabases();

const redisUrl = process.env.TEST_REDIS_URL;
const postgresUrl = process.env.TEST_DATABASE_URL;

const ADMIN_API_KEY = 'admin-api-key-of-the-rate-limit-tests';
/** A page no key of these tests covers. */
const OTHER_PAGE_ID = '5300000001';
/** The fixed window of GENERATE_RATE_LIMIT. */
const WINDOW_MS = 60_000;
/** The warning the limiter logs when it falls back to counting per instance. */
const INSURANCE_WARNING = 'redis unreachable: the generate rate limit is counted per instance until it is back';

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const asAdmin = bearer(ADMIN_API_KEY);

interface Key {
  id: string;
  headers: Record<string, string>;
}

/** A stored key (created by ADMIN_API_KEY), EDITOR of the test page unless told otherwise. */
async function createKey(gateway: TestGateway, role: Role = 'EDITOR', pageIds: string[] | null = [TEST_PAGE_ID]): Promise<Key> {
  const { createApiKey } = await executeOk(
    gateway.url,
    CreateApiKeyDocument,
    { input: { name: `rate limit ${role.toLowerCase()}`, role, pageIds } },
    asAdmin,
  );
  return { id: createApiKey.apiKey.id, headers: bearer(createApiKey.key) };
}

function generate(
  gateway: TestGateway,
  headers: Record<string, string>,
  input: GenerateCodeInput,
): Promise<GraphQLResponse<GenerateCodeMutation>> {
  return execute(gateway.url, GenerateCodeDocument, { input }, headers);
}

/** generateCode of `ref` that must succeed; returns the code. */
async function generateOk(
  gateway: TestGateway,
  headers: Record<string, string>,
  ref: string,
): Promise<GenerateCodeMutation['generateCode']> {
  const result = await generate(gateway, headers, { data: { ref }, imageSize: 100 });
  expect(result.errors).toBeUndefined();
  expect(result.data?.generateCode.ref).toBe(ref);
  return (result.data as GenerateCodeMutation).generateCode;
}

/** The one error of a failed generateCode, which stored no code. */
function onlyError(result: GraphQLResponse<GenerateCodeMutation>): GraphQLFormattedError {
  expect(result.data ?? null).toBeNull();
  expect(result.errors).toHaveLength(1);
  const [error] = result.errors as GraphQLFormattedError[];
  expect(error.path).toEqual(['generateCode']);
  return error;
}

/** Checks a RATE_LIMITED refusal (message naming GENERATE_RATE_LIMIT and the limit) and returns its retryAfter. */
function expectRateLimited(result: GraphQLResponse<GenerateCodeMutation>, limit: number): number {
  const error = onlyError(result);
  expect(error.extensions?.code).toBe('RATE_LIMITED');
  expect(error.message).toContain('GENERATE_RATE_LIMIT');
  expect(error.message).toContain(`${limit} codes a minute`);
  const retryAfter = error.extensions?.retryAfter as number;
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  return retryAfter;
}

/** generateCode of `ref` that must be refused with RATE_LIMITED, storing nothing; returns retryAfter. */
async function generateRefused(gateway: TestGateway, headers: Record<string, string>, ref: string, limit: number): Promise<number> {
  const before = await storedRows(gateway);
  const retryAfter = expectRateLimited(await generate(gateway, headers, { data: { ref }, imageSize: 100 }), limit);
  expect(await storedRows(gateway)).toEqual(before);
  expect(await totalCodes(gateway, ref)).toBe(0);
  return retryAfter;
}

async function storedRows(gateway: TestGateway): Promise<number[]> {
  return [await countRows(gateway, 'code'), await countRows(gateway, 'code_image'), await countRows(gateway, 'ref_counter')];
}

async function totalCodes(gateway: TestGateway, ref: string): Promise<number> {
  return (await executeOk(gateway.url, CodesDocument, { ref }, asAdmin)).codes.totalCount;
}

const refs = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, index) => `${prefix}-${index + 1}`);

/** A port on 127.0.0.1 where nothing listens. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.each(DATABASE_KINDS)('GENERATE_RATE_LIMIT on %s', (kind) => {
  const LIMIT = 3;
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { ADMIN_API_KEY, GENERATE_RATE_LIMIT: String(LIMIT) });
  });

  it('lets a key generate GENERATE_RATE_LIMIT codes, then refuses the next with RATE_LIMITED and stores nothing of it', async () => {
    const key = await createKey(gateway);
    const before = await storedRows(gateway);
    for (const ref of refs('first', LIMIT)) await generateOk(gateway, key.headers, ref);
    const afterLimit = await storedRows(gateway);
    expect(afterLimit).toEqual([before[0] + LIMIT, before[1] + LIMIT, before[2] + LIMIT]);

    await generateRefused(gateway, key.headers, 'first-over', LIMIT);
    // Asked again, still refused: the refusal neither stored nor freed anything.
    await generateRefused(gateway, key.headers, 'first-over', LIMIT);
    // The static code (no ref) is a code like any other.
    const staticCode = expectRateLimited(await generate(gateway, key.headers, { imageSize: 100 }), LIMIT);
    expect(staticCode).toBeGreaterThanOrEqual(1);
    expect(await storedRows(gateway)).toEqual(afterLimit);
    for (const ref of refs('first', LIMIT)) expect(await totalCodes(gateway, ref)).toBe(1);
  });

  it('gives every stored key and ADMIN_API_KEY a budget of their own', async () => {
    const first = await createKey(gateway);
    const second = await createKey(gateway);
    const admin = await createKey(gateway, 'ADMIN', null);

    for (const ref of refs('own-first', LIMIT)) await generateOk(gateway, first.headers, ref);
    await generateRefused(gateway, first.headers, 'own-first-over', LIMIT);

    // The second key, a stored ADMIN key and ADMIN_API_KEY each still have their whole budget.
    for (const ref of refs('own-second', LIMIT)) await generateOk(gateway, second.headers, ref);
    await generateRefused(gateway, second.headers, 'own-second-over', LIMIT);
    for (const ref of refs('own-admin', LIMIT)) await generateOk(gateway, admin.headers, ref);
    await generateRefused(gateway, admin.headers, 'own-admin-over', LIMIT);
    for (const ref of refs('own-admin-api-key', LIMIT)) await generateOk(gateway, asAdmin, ref);
    await generateRefused(gateway, asAdmin, 'own-admin-api-key-over', LIMIT);

    // None of them gave the first key anything back.
    await generateRefused(gateway, first.headers, 'own-first-over', LIMIT);
  });

  it('does not count calls refused before generating: bad input, a page outside the key, an unknown page', async () => {
    const key = await createKey(gateway);
    const admin = await createKey(gateway, 'ADMIN', null);
    const before = await storedRows(gateway);
    // Each more often than the whole budget: had any counted, the successes below would fall short.
    for (let attempt = 0; attempt <= LIMIT; attempt++) {
      const badSize = onlyError(await generate(gateway, key.headers, { data: { ref: 'refused-size' }, imageSize: 99 }));
      expect(badSize.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'imageSize' });
      const badRef = onlyError(await generate(gateway, key.headers, { data: { ref: 'not a valid ref!' }, imageSize: 100 }));
      expect(badRef.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'data.ref' });
      const badLabel = onlyError(await generate(gateway, key.headers, { data: { ref: 'refused-label' }, label: 'x'.repeat(201) }));
      expect(badLabel.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'label' });
      const outside = onlyError(await generate(gateway, key.headers, { pageId: OTHER_PAGE_ID, data: { ref: 'refused-page' } }));
      expect(outside.extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });
      const unknown = onlyError(await generate(gateway, admin.headers, { pageId: OTHER_PAGE_ID, data: { ref: 'refused-page' } }));
      expect(unknown.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'pageId' });
    }
    expect(await storedRows(gateway)).toEqual(before);

    for (const ref of refs('after-refusals', LIMIT)) await generateOk(gateway, key.headers, ref);
    for (const ref of refs('admin-after-refusals', LIMIT)) await generateOk(gateway, admin.headers, ref);
    await generateRefused(gateway, key.headers, 'after-refusals-over', LIMIT);
    await generateRefused(gateway, admin.headers, 'admin-after-refusals-over', LIMIT);

    // Validation comes first: past the limit, bad input is still told what is wrong with it.
    const badSize = onlyError(await generate(gateway, key.headers, { data: { ref: 'refused-size' }, imageSize: 99 }));
    expect(badSize.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'imageSize' });
  });

  it('counts concurrent calls exactly: of many at once, GENERATE_RATE_LIMIT succeed and the rest store nothing', async () => {
    const key = await createKey(gateway);
    const before = await storedRows(gateway);
    const batch = refs('concurrent', LIMIT + 5);
    const results = await Promise.all(batch.map((ref) => generate(gateway, key.headers, { data: { ref }, imageSize: 100 })));
    const succeeded = results.filter((result) => result.errors === undefined);
    const refused = results.filter((result) => result.errors !== undefined);
    expect(succeeded).toHaveLength(LIMIT);
    for (const result of refused) expectRateLimited(result, LIMIT);
    expect(await storedRows(gateway)).toEqual([before[0] + LIMIT, before[1] + LIMIT, before[2] + LIMIT]);
    const stored = await Promise.all(batch.map((ref) => totalCodes(gateway, ref)));
    expect(stored.filter((count) => count === 1)).toHaveLength(LIMIT);
    expect(succeeded.map((result) => result.data?.generateCode.ref).sort()).toEqual(batch.filter((_, index) => stored[index] === 1).sort());
  });

  it('neither counts refusals nor lets them push the window back: the next window has the whole budget (the clock moved, not waited)', async () => {
    const key = await createKey(gateway);
    // Only Date is faked, in this process where the gateway runs: timers, I/O and the database go on as usual.
    const start = Date.now();
    jest.useFakeTimers({
      now: start,
      doNotFake: [
        'hrtime',
        'nextTick',
        'performance',
        'queueMicrotask',
        'requestAnimationFrame',
        'cancelAnimationFrame',
        'requestIdleCallback',
        'cancelIdleCallback',
        'setImmediate',
        'clearImmediate',
        'setInterval',
        'clearInterval',
        'setTimeout',
        'clearTimeout',
      ],
    });
    try {
      for (const ref of refs('window-1', LIMIT)) await generateOk(gateway, key.headers, ref);
      for (let refusal = 0; refusal < 3; refusal++) expect(await generateRefused(gateway, key.headers, 'window-1-over', LIMIT)).toBe(60);

      // Half-way: the window still ends where it began plus a minute, not a minute after a refusal.
      jest.setSystemTime(start + WINDOW_MS / 2);
      for (let refusal = 0; refusal < 3; refusal++) expect(await generateRefused(gateway, key.headers, 'window-1-over', LIMIT)).toBe(30);
      jest.setSystemTime(start + WINDOW_MS - 1);
      expect(await generateRefused(gateway, key.headers, 'window-1-over', LIMIT)).toBe(1);

      // The next window: the whole budget, none of the refusals carried over, and then the limit again.
      jest.setSystemTime(start + WINDOW_MS + 1);
      for (const ref of refs('window-2', LIMIT)) await generateOk(gateway, key.headers, ref);
      expect(await generateRefused(gateway, key.headers, 'window-2-over', LIMIT)).toBe(60);
      expect(await totalCodes(gateway, 'window-1-over')).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe.each(DATABASE_KINDS)('GENERATE_RATE_LIMIT and calls failing upstream (FACEBOOK provider) on %s', (kind) => {
  const LIMIT = 3;
  let fake: FakeGraphApi;
  let gateway: TestGateway;

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    gateway = await startTestGateway(kind, {
      ADMIN_API_KEY,
      GENERATE_RATE_LIMIT: String(LIMIT),
      CODE_PROVIDER: 'facebook',
      GRAPH_API_URL: fake.url,
      PAGE_ACCESS_TOKEN: 'test-token-EAAG-rate-limit',
      GRAPH_API_MAX_ATTEMPTS: '1',
    });
  });
  beforeEach(() => fake.reset());
  afterAll(async () => {
    await gateway?.stop();
    await fake?.stop();
  });

  it('gives back the budget of a call the Graph API refused, and never calls it for a refused call', async () => {
    const key = await createKey(gateway);
    const before = await storedRows(gateway);
    // More failures than the whole budget.
    for (let attempt = 0; attempt <= LIMIT; attempt++) {
      fake.enqueue({ kind: 'graphError', code: 100, type: 'GraphMethodException' });
      const error = onlyError(await generate(gateway, key.headers, { data: { ref: 'upstream-refused' }, imageSize: 100 }));
      expect(error.extensions?.code).toBe('UPSTREAM_ERROR');
      fake.enqueue({ kind: 'imageStatus', status: 404 });
      const gone = onlyError(await generate(gateway, key.headers, { data: { ref: 'upstream-gone' }, imageSize: 100 }));
      expect(gone.extensions?.code).toBe('UPSTREAM_ERROR');
    }
    expect(fake.requests).toHaveLength(2 * (LIMIT + 1));
    expect(await storedRows(gateway)).toEqual(before);

    for (const ref of refs('upstream-after', LIMIT)) {
      const code = await generateOk(gateway, key.headers, ref);
      expect(code.provider).toBe('FACEBOOK');
    }
    const calls = fake.requests.length;
    expect(calls).toBe(2 * (LIMIT + 1) + LIMIT);
    await generateRefused(gateway, key.headers, 'upstream-over', LIMIT);
    // Refused before anything was done: the Graph API was not asked.
    expect(fake.requests).toHaveLength(calls);
  });
});

describe.each(DATABASE_KINDS)('GENERATE_RATE_LIMIT with REDIS_URL on a closed port, on %s', (kind) => {
  const LIMIT = 3;
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, {
      ADMIN_API_KEY,
      GENERATE_RATE_LIMIT: String(LIMIT),
      REDIS_URL: `redis://127.0.0.1:${await closedPort()}`,
      LOG_LEVEL: 'warn',
    });
  });

  it('goes on generating, counted per instance, and still limits at GENERATE_RATE_LIMIT', async () => {
    await eventually(() => gateway.logs.text.includes(INSURANCE_WARNING), 10_000, 'the rate limit to warn that Redis is unreachable');
    const first = await createKey(gateway);
    const second = await createKey(gateway);
    for (const ref of refs('no-redis', LIMIT)) await generateOk(gateway, first.headers, ref);
    await generateRefused(gateway, first.headers, 'no-redis-over', LIMIT);
    // Still per key.
    for (const ref of refs('no-redis-second', LIMIT)) await generateOk(gateway, second.headers, ref);
    await generateRefused(gateway, second.headers, 'no-redis-second-over', LIMIT);

    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    // Warned once for the outage, not once per call.
    expect(gateway.logs.entries().filter((entry) => entry.message === INSURANCE_WARNING)).toHaveLength(1);
  });
});

if (!redisUrl || !postgresUrl) {
  test.skip('GENERATE_RATE_LIMIT shared through Redis by two instances on PostgreSQL (skipped: TEST_REDIS_URL or TEST_DATABASE_URL is not set)', () =>
    undefined);
} else {
  describe('GENERATE_RATE_LIMIT shared through Redis by two instances on one PostgreSQL database', () => {
    const LIMIT = 4;
    let a: TestGateway;
    let b: TestGateway;
    let redis: Redis;

    beforeAll(async () => {
      const env = { ADMIN_API_KEY, GENERATE_RATE_LIMIT: String(LIMIT), REDIS_URL: redisUrl };
      a = await startTestGateway('postgres', env);
      b = await startTestGateway(a.database, env);
      redis = new Redis(redisUrl);
    });
    afterAll(async () => {
      await redis?.quit();
    });

    /** The Redis key holding `key`'s count (found by its id, whatever the prefix). */
    async function budgetKeyOf(key: Key): Promise<string> {
      const found = await redis.keys(`*${key.id}*`);
      expect(found).toHaveLength(1);
      return found[0];
    }

    it('counts the calls on both instances against one budget: 2 on A, 2 on B, then refused on either', async () => {
      const key = await createKey(a);
      await generateOk(a, key.headers, 'shared-a-1');
      await generateOk(a, key.headers, 'shared-a-2');
      await generateOk(b, key.headers, 'shared-b-1');
      await generateOk(b, key.headers, 'shared-b-2');
      await generateRefused(a, key.headers, 'shared-over-a', LIMIT);
      await generateRefused(b, key.headers, 'shared-over-b', LIMIT);
      // Another key has its own budget on both.
      const other = await createKey(b);
      await generateOk(a, other.headers, 'shared-other-a');
      await generateOk(b, other.headers, 'shared-other-b');
    });

    it('counts concurrent calls on both instances exactly', async () => {
      const key = await createKey(a);
      const before = await storedRows(a);
      const batch = refs('shared-concurrent', LIMIT + 6);
      const results = await Promise.all(
        batch.map((ref, index) => generate(index % 2 === 0 ? a : b, key.headers, { data: { ref }, imageSize: 100 })),
      );
      const succeeded = results.filter((result) => result.errors === undefined);
      expect(succeeded).toHaveLength(LIMIT);
      for (const result of results.filter((result) => result.errors !== undefined)) expectRateLimited(result, LIMIT);
      expect(await storedRows(b)).toEqual([before[0] + LIMIT, before[1] + LIMIT, before[2] + LIMIT]);
    });

    it('keeps refusals out of the shared count and does not push the window back; a new window has the whole budget', async () => {
      const key = await createKey(a);
      for (const ref of refs('shared-window-1', LIMIT)) await generateOk(ref.endsWith('1') || ref.endsWith('3') ? a : b, key.headers, ref);
      const budgetKey = await budgetKeyOf(key);
      const ttlBefore = await redis.pttl(budgetKey);
      expect(ttlBefore).toBeGreaterThan(0);
      expect(ttlBefore).toBeLessThanOrEqual(WINDOW_MS);
      for (let refusal = 0; refusal < 3; refusal++) {
        await generateRefused(a, key.headers, 'shared-window-1-over', LIMIT);
        await generateRefused(b, key.headers, 'shared-window-1-over', LIMIT);
      }
      // The refusals were given back and did not move the end of the window.
      expect(await redis.get(budgetKey)).toBe(String(LIMIT));
      expect(await redis.pttl(budgetKey)).toBeLessThanOrEqual(ttlBefore);

      // The window ends (Redis expires the count) without waiting a minute.
      await redis.pexpire(budgetKey, 1);
      await eventually(async () => (await redis.exists(budgetKey)) === 0, 5000, 'the count to expire');
      await generateOk(a, key.headers, 'shared-window-2-a-1');
      await generateOk(b, key.headers, 'shared-window-2-b-1');
      await generateOk(a, key.headers, 'shared-window-2-a-2');
      await generateOk(b, key.headers, 'shared-window-2-b-2');
      await generateRefused(a, key.headers, 'shared-window-2-over', LIMIT);
      await generateRefused(b, key.headers, 'shared-window-2-over', LIMIT);
    });
  });
}

if (!redisUrl) {
  test.skip('GENERATE_RATE_LIMIT shared from the first call of an instance just started (skipped: TEST_REDIS_URL is not set)', () =>
    undefined);
} else {
  describe.each(DATABASE_KINDS)(
    'GENERATE_RATE_LIMIT shared through Redis from the first call of an instance just started, on %s',
    (kind) => {
      const LIMIT = 4;
      let redis: Redis;

      beforeAll(() => {
        redis = new Redis(redisUrl);
      });
      afterAll(async () => {
        await redis?.quit();
      });

      it('counts that first call against the shared budget, not against a budget of its own', async () => {
        const env = { ADMIN_API_KEY, GENERATE_RATE_LIMIT: String(LIMIT), REDIS_URL: redisUrl };
        const first = await startTestGateway(kind, env);
        const key = await createKey(first);
        for (const ref of refs('started-first', LIMIT - 1)) await generateOk(first, key.headers, ref);
        // Asked at once, before its connection to Redis may be up.
        const started = await startTestGateway(first.database, env);
        await generateOk(started, key.headers, 'started-new-1');
        await generateRefused(started, key.headers, 'started-new-over', LIMIT);
        await generateRefused(first, key.headers, 'started-first-over', LIMIT);
        const [budgetKey] = await redis.keys(`*${key.id}*`);
        expect(await redis.get(budgetKey)).toBe(String(LIMIT));
      });
    },
  );
}

if (!redisUrl) {
  test.skip('GENERATE_RATE_LIMIT when Redis is cut mid-window (skipped: TEST_REDIS_URL is not set)', () => undefined);
} else {
  describe.each(DATABASE_KINDS)('GENERATE_RATE_LIMIT when Redis is cut mid-window, on %s', (kind) => {
    const LIMIT = 4;
    let proxy: TcpProxy;
    let gateway: TestGateway;
    let redis: Redis;

    beforeAll(async () => {
      proxy = await startTcpProxy(hostAndPort(redisUrl));
      const proxied = new URL(redisUrl);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      gateway = await startTestGateway(kind, {
        ADMIN_API_KEY,
        GENERATE_RATE_LIMIT: String(LIMIT),
        REDIS_URL: proxied.toString(),
        LOG_LEVEL: 'warn',
      });
      redis = new Redis(redisUrl);
    });
    afterAll(async () => {
      proxy?.restore(); // lets the gateway say goodbye to Redis
      await gateway?.stop();
      await proxy?.close();
      await redis?.quit();
    });

    it('goes on generating with the per-instance insurance, which still limits at GENERATE_RATE_LIMIT', async () => {
      const key = await createKey(gateway);
      await generateOk(gateway, key.headers, 'cut-before-1');
      await generateOk(gateway, key.headers, 'cut-before-2');
      // Counted in Redis so far.
      const [budgetKey] = await redis.keys(`*${key.id}*`);
      expect(await redis.get(budgetKey)).toBe('2');
      expect(gateway.logs.text).not.toContain(INSURANCE_WARNING);

      proxy.cutAll();
      await eventually(() => gateway.logs.text.includes(INSURANCE_WARNING), 10_000, 'the rate limit to warn that Redis is unreachable');
      for (const ref of refs('cut-during', LIMIT)) await generateOk(gateway, key.headers, ref);
      await generateRefused(gateway, key.headers, 'cut-during-over', LIMIT);
      expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
      // Nothing reached Redis meanwhile.
      expect(await redis.get(budgetKey)).toBe('2');
    });
  });
}
