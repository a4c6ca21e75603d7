import {
  CodeStatsDocument,
  CreateApiKeyDocument,
  GenerateTrackedCodeDocument,
  RegisterPageDocument,
  ScanStatsDocument,
} from './generated/graphql';
import type { ScanStatsQuery } from './generated/graphql';
import { ScanKind } from '../src/scans/scan-kind';
import { compactRollups, queryRunnerSql } from '../src/stats/scan-rollups';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { eventually } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';
import type { SimulatedScan } from '../src/webhook/simulated-webhook';
import { Prng } from './support/prng';

reportSkippedDatabases();

const PAGE_B = '5000000000002';
const PAGES = [TEST_PAGE_ID, PAGE_B];
const CODED_REFS = ['table-1', 'table-2', 'table-3'];
const REFS = [...CODED_REFS, 'orphan-flyer', null];
const SOURCES = ['SHORTLINK', 'MESSENGER_CODE', 'ADS', null];
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu'];

/** Both 2026 DST changes of Europe (29 March, 25 October) and of the United States (8 March, 1 November). */
const SPRING = { from: Date.parse('2026-03-05T00:00:00Z'), to: Date.parse('2026-04-02T00:00:00Z') };
const AUTUMN = { from: Date.parse('2026-10-20T00:00:00Z'), to: Date.parse('2026-11-04T00:00:00Z') };

/** The same scans on every run, so that a failure can be replayed. */
function randomSource(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

// ---------------------------------------------------------------------------------------
// The oracle: buckets from the local calendar as Intl reports it (not the gateway's Luxon),
// counts by brute force over the scans posted.

function localParts(instant: number, timeZone: string): Record<string, number> {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    timeZoneName: 'longOffset',
  }).formatToParts(new Date(instant));
  const value = (type: string) => parts.find((part) => part.type === type)?.value ?? '';
  const offset = value('timeZoneName'); // GMT+05:45, or GMT for UTC
  return {
    year: Number(value('year')),
    month: Number(value('month')),
    day: Number(value('day')),
    hour: Number(value('hour')),
    offsetMinutes: offset === 'GMT' ? 0 : (offset[3] === '-' ? -1 : 1) * (Number(offset.slice(4, 6)) * 60 + Number(offset.slice(7, 9))),
  };
}

/** The bucket an instant falls in, named by local calendar values (and the offset, for a repeated hour). */
function bucketKey(instant: number, interval: string, timeZone: string): string {
  const local = localParts(instant, timeZone);
  switch (interval) {
    case 'HOUR':
      return `${local.year}-${local.month}-${local.day} ${local.hour}h ${local.offsetMinutes}`;
    case 'DAY':
      return `${local.year}-${local.month}-${local.day}`;
    case 'WEEK': {
      // The local date's Monday, by calendar arithmetic on the local date alone.
      const date = new Date(Date.UTC(local.year, local.month - 1, local.day));
      date.setUTCDate(date.getUTCDate() - ((date.getUTCDay() + 6) % 7));
      return `week of ${date.toISOString().slice(0, 10)}`;
    }
    default:
      return `${local.year}-${local.month}`;
  }
}

interface Expected {
  total: number;
  firstTime: number;
  people: Set<string>;
}

function expectedCounts(scans: SimulatedScan[]): Expected {
  return {
    total: scans.length,
    firstTime: scans.filter((scan) => scan.kind === ScanKind.POSTBACK).length,
    people: new Set(scans.map((scan) => `${scan.pageId}:${scan.senderPsid}`)),
  };
}

function expectMatches(stats: ScanStatsQuery['scanStats'], scans: SimulatedScan[], interval: string, timeZone: string): void {
  const all = expectedCounts(scans);
  expect({ total: stats.total, firstTime: stats.firstTime, returning: stats.returning, uniquePeople: stats.uniquePeople }).toEqual({
    total: all.total,
    firstTime: all.firstTime,
    returning: all.total - all.firstTime,
    uniquePeople: all.people.size,
  });
  // Every bucket's start lies in its own bucket: its key names the scans it must count.
  const byKey = new Map<string, SimulatedScan[]>();
  for (const scan of scans) {
    const key = bucketKey(scan.timestamp, interval, timeZone);
    byKey.set(key, [...(byKey.get(key) ?? []), scan]);
  }
  const keys = stats.buckets.map((bucket) => bucketKey(Date.parse(bucket.start), interval, timeZone));
  expect(new Set(keys).size).toBe(keys.length);
  for (const key of byKey.keys()) expect(keys).toContain(key);
  stats.buckets.forEach((bucket, index) => {
    const inBucket = expectedCounts(byKey.get(keys[index]) ?? []);
    expect([keys[index], bucket.total, bucket.firstTime, bucket.returning, bucket.uniquePeople]).toEqual([
      keys[index],
      inBucket.total,
      inBucket.firstTime,
      inBucket.total - inBucket.firstTime,
      inBucket.people.size,
    ]);
  });
  // Oldest first, one per interval with nothing skipped: consecutive starts.
  for (let index = 1; index < stats.buckets.length; index++) {
    expect(Date.parse(stats.buckets[index].start)).toBeGreaterThan(Date.parse(stats.buckets[index - 1].start));
  }
}

/** Folds the rollup rows that ingest left pending, as ingest does once enough have gathered. */
async function foldPendingRollups(gateway: TestGateway): Promise<void> {
  const runner = gateway.db.dataSource.createQueryRunner();
  try {
    await runner.startTransaction();
    expect(await compactRollups(queryRunnerSql(runner))).toBeGreaterThan(0);
    await runner.commitTransaction();
  } finally {
    await runner.release();
  }
}

describe.each(DATABASE_KINDS)('scanStats on %s', (kind) => {
  let gateway: TestGateway;
  const posted: SimulatedScan[] = [];
  const codeIds = new Map<string, string>();

  const inWindow = (from: number, to: number, pageIds: string[] = PAGES, ref?: string | null) =>
    posted.filter(
      (scan) =>
        scan.timestamp >= from && scan.timestamp < to && pageIds.includes(scan.pageId) && (ref === undefined || (scan.ref ?? null) === ref),
    );

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_B } });
    for (const pageId of PAGES) {
      for (const ref of CODED_REFS) {
        const { generateCode } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
          input: { pageId, data: { ref }, imageSize: 100 },
        });
        codeIds.set(`${pageId}:${ref}`, generateCode.id);
      }
    }
    const random = randomSource(20261202);
    const pick = <T>(values: T[]): T => values[Math.floor(random() * values.length)];
    const scan = (timestamp: number): SimulatedScan =>
      scanOf(pick(PAGES), {
        ref: pick(REFS),
        kind: random() < 0.3 ? ScanKind.POSTBACK : ScanKind.REFERRAL,
        source: pick(SOURCES),
        // 40 people, each scanning several times.
        senderPsid: `person-${Math.floor(random() * 40)}`,
        timestamp,
      });
    for (const window of [SPRING, AUTUMN]) {
      for (let index = 0; index < 300; index++) posted.push(scan(window.from + Math.floor(random() * (window.to - window.from))));
    }
    // On local midnights of DST days and of the odd offsets, and 1 ms either side.
    const boundaries = [
      '2026-03-28T23:00:00Z', // Berlin, 29 March 00:00 (+01:00)
      '2026-03-29T22:00:00Z', // Berlin, 30 March 00:00 (+02:00): after the 23-hour day
      '2026-10-24T22:00:00Z', // Berlin, 25 October 00:00 (+02:00)
      '2026-10-25T23:00:00Z', // Berlin, 26 October 00:00 (+01:00): after the 25-hour day
      '2026-10-25T00:30:00Z', // Berlin, the first 02:30 of the repeated hour
      '2026-10-25T01:30:00Z', // Berlin, the second 02:30
      '2026-03-08T07:00:00Z', // New York, 8 March 03:00 (EDT), just after the skipped hour
      '2026-11-01T05:00:00Z', // New York, 1 November 01:00 (EDT); 06:00Z is 01:00 again (EST)
      '2026-03-15T18:30:00Z', // Kolkata, 16 March 00:00
      '2026-03-15T18:15:00Z', // Kathmandu, 16 March 00:00
      '2026-10-31T18:15:00Z', // Kathmandu, 1 November 00:00: a month boundary
    ].map(Date.parse);
    for (const boundary of boundaries) for (const delta of [-1, 0, 1]) posted.push(scan(boundary + delta));
    for (let start = 0; start < posted.length; start += 200) {
      expect((await postScans(gateway.url, posted.slice(start, start + 200))).status).toBe(200);
      // The first scans folded into the rollup rows, the others left pending: the statistics read both.
      if (start === 200) await foldPendingRollups(gateway);
    }
  });

  const cases: [string, string, { from: number; to: number }][] = [];
  for (const timeZone of ZONES) {
    cases.push([timeZone, 'DAY', SPRING], [timeZone, 'DAY', AUTUMN], [timeZone, 'WEEK', SPRING], [timeZone, 'MONTH', AUTUMN]);
    // HOUR over the days of the changes, 3 days at most (72 buckets).
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-03-28T00:00:00Z'), to: Date.parse('2026-03-31T00:00:00Z') }]);
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-10-24T12:00:00Z'), to: Date.parse('2026-10-26T12:00:00Z') }]);
  }

  it.each(cases)('counts as a brute force over the scans does: %s, %s', async (timeZone, interval, window) => {
    const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, {
      from: new Date(window.from).toISOString(),
      to: new Date(window.to).toISOString(),
      interval: interval as 'DAY',
      timeZone,
    });
    expect(scanStats).toMatchObject({
      interval,
      timeZone,
      from: new Date(window.from).toISOString(),
      to: new Date(window.to).toISOString(),
    });
    expectMatches(scanStats, inWindow(window.from, window.to), interval, timeZone);
  });

  it('counts [from, to) to the millisecond, on a boundary and 1 ms either side', async () => {
    const midnight = Date.parse('2026-10-24T22:00:00Z');
    for (const [from, to] of [
      [midnight, midnight + 1],
      [midnight - 1, midnight],
      [midnight + 1, Date.parse('2026-10-25T23:00:00Z')],
      [midnight - 1, Date.parse('2026-10-25T23:00:00Z') + 1],
    ]) {
      const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, {
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        timeZone: 'Europe/Berlin',
      });
      expectMatches(scanStats, inWindow(from, to), 'DAY', 'Europe/Berlin');
    }
  });

  it('narrows to a page and to a code, and ranks sources and codes', async () => {
    const { from, to } = AUTUMN;
    const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
    const { scanStats: ofB } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B, top: 100 });
    const scansOfB = inWindow(from, to, [PAGE_B]);
    expectMatches(ofB, scansOfB, 'DAY', 'UTC');

    const sources = new Map<string | null, number>();
    for (const scan of scansOfB) sources.set(scan.source ?? null, (sources.get(scan.source ?? null) ?? 0) + 1);
    expect(ofB.bySource.map(({ source, count }) => [source, count]).sort()).toEqual([...sources.entries()].sort());
    expect(ofB.bySource.map(({ count }) => count)).toEqual([...ofB.bySource.map(({ count }) => count)].sort((a, b) => b - a));

    const perRef = CODED_REFS.map((ref) => [ref, scansOfB.filter((scan) => scan.ref === ref).length] as const).filter(
      ([, count]) => count > 0,
    );
    expect(ofB.topCodes.map(({ code, count }) => [code.ref, count]).sort()).toEqual(perRef.map(([ref, count]) => [ref, count]).sort());
    for (const { code } of ofB.topCodes) expect(code.pageId).toBe(PAGE_B);
    expect(ofB.topCodes.map(({ count }) => count)).toEqual([...ofB.topCodes.map(({ count }) => count)].sort((a, b) => b - a));
    const { scanStats: top1 } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B, top: 1 });
    expect(top1.topCodes).toHaveLength(1);

    const codeId = codeIds.get(`${PAGE_B}:table-2`) as string;
    const { scanStats: ofCode } = await executeOk(gateway.url, ScanStatsDocument, { ...range, codeId, timeZone: 'Asia/Kathmandu' });
    expectMatches(ofCode, inWindow(from, to, [PAGE_B], 'table-2'), 'DAY', 'Asia/Kathmandu');
    const { code } = await executeOk(gateway.url, CodeStatsDocument, { id: codeId, ...range, timeZone: 'Asia/Kathmandu' });
    expect(code?.stats.total).toBe(ofCode.total);
    expect(code?.stats.buckets.map((bucket) => bucket.total)).toEqual(ofCode.buckets.map((bucket) => bucket.total));
  });

  it('gives zeros, every bucket present, for a page with no scans', async () => {
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: '5000000000009' } });
    const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, {
      pageId: '5000000000009',
      from: '2026-03-01T00:00:00.000Z',
      to: '2026-03-08T00:00:00.000Z',
      timeZone: 'Europe/Berlin',
    });
    expect(scanStats.total).toBe(0);
    expect(scanStats.buckets).toHaveLength(8); // 1 March 00:00 UTC is 01:00 in Berlin: the first bucket is 28 February
    expect(scanStats.buckets.every((bucket) => bucket.total === 0 && bucket.uniquePeople === 0 && bucket.visits === 0)).toBe(true);
    expect(scanStats.bySource).toEqual([]);
    expect(scanStats.topCodes).toEqual([]);
  });

  it.each([
    [{ timeZone: 'Mars/Olympus_Mons' }, 'timeZone'],
    [{ timeZone: '+05:30' }, 'timeZone'],
    [{ to: '2026-03-05T00:00:00.000Z' }, 'to'],
    [{ to: '2026-03-04T23:59:59.999Z' }, 'to'],
    [{ interval: 'HOUR', to: '2026-04-16T16:00:00.001Z' }, 'interval'],
    [{ top: 0 }, 'first'],
    [{ top: 101 }, 'first'],
  ])('refuses %j with BAD_USER_INPUT on %s', async (overrides, field) => {
    const result = await execute(gateway.url, ScanStatsDocument, {
      from: '2026-03-05T00:00:00.000Z',
      to: '2026-03-06T00:00:00.000Z',
      ...overrides,
    } as never);
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('allows exactly 1,000 buckets', async () => {
    const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, {
      from: '2026-03-05T00:00:00.000Z',
      to: new Date(Date.parse('2026-03-05T00:00:00.000Z') + 1000 * 3_600_000).toISOString(),
      interval: 'HOUR',
    });
    expect(scanStats.buckets).toHaveLength(1000);
    expect(scanStats.total).toBe(
      inWindow(Date.parse('2026-03-05T00:00:00.000Z'), Date.parse('2026-03-05T00:00:00.000Z') + 1000 * 3_600_000).length,
    );
  });

  it('counts the visits of REDIRECT links in the funnel', async () => {
    const { generateCode } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'funnel' }, imageSize: 100, tracking: 'REDIRECT' },
    });
    const path = new URL(generateCode.link).pathname;
    const before = Date.now();
    for (let visit = 0; visit < 3; visit++) await fetch(`${gateway.url}${path}`, { redirect: 'manual' });
    await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'funnel', timestamp: Date.now() })]);
    const range = {
      from: new Date(before - 60_000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
      interval: 'HOUR' as const,
    };
    await eventually(
      async () => (await executeOk(gateway.url, CodeStatsDocument, { id: generateCode.id, ...range })).code?.stats.visits === 3,
      10_000,
      'three visits',
    );
    const { code } = await executeOk(gateway.url, CodeStatsDocument, { id: generateCode.id, ...range });
    expect(code?.stats.total).toBe(1);
    expect(code?.stats.buckets.reduce((sum, bucket) => sum + bucket.visits, 0)).toBe(3);
    const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: TEST_PAGE_ID });
    expect(scanStats.visits).toBe(3);
    const { scanStats: ofB } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B });
    expect(ofB.visits).toBe(0);
  });

  it('counts again the people of days asked before, once scans are added and folded into their rows', async () => {
    const window = { from: Date.parse('2026-01-05T00:00:00Z'), to: Date.parse('2026-01-08T00:00:00Z') };
    const range = { from: new Date(window.from).toISOString(), to: new Date(window.to).toISOString(), timeZone: 'Europe/Berlin' };
    const codeId = codeIds.get(`${PAGE_B}:table-1`) as string;
    const post = async (people: string[]) => {
      const scans = people.flatMap((person, index) =>
        [0, 1].map((day) =>
          scanOf(PAGE_B, { ref: 'table-1', senderPsid: person, timestamp: window.from + day * 86_400_000 + 3_600_000 * (index + 1) }),
        ),
      );
      posted.push(...scans);
      expect((await postScans(gateway.url, scans)).status).toBe(200);
      await foldPendingRollups(gateway);
    };
    const expectCurrent = async () => {
      const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B });
      expectMatches(scanStats, inWindow(window.from, window.to, [PAGE_B]), 'DAY', 'Europe/Berlin');
      const { scanStats: ofCode } = await executeOk(gateway.url, ScanStatsDocument, { ...range, codeId });
      expectMatches(ofCode, inWindow(window.from, window.to, [PAGE_B], 'table-1'), 'DAY', 'Europe/Berlin');
      return scanStats;
    };
    await post(['january-1', 'january-2', 'january-3']);
    expect((await expectCurrent()).uniquePeople).toBe(3);
    // The same rows again, with more scans and new people: read anew, not as they were asked before.
    await post(['january-2', 'january-4', 'january-5']);
    const after = await expectCurrent();
    expect([after.total, after.uniquePeople]).toEqual([12, 5]);
  });

  it('gives a scoped key its pages only', async () => {
    const admin = await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } });
    const viewer = await executeOk(
      gateway.url,
      CreateApiKeyDocument,
      { input: { name: 'viewer of B', role: 'VIEWER', pageIds: [PAGE_B] } },
      { authorization: `Bearer ${admin.createApiKey.key}` },
    );
    const headers = { authorization: `Bearer ${viewer.createApiKey.key}` };
    const range = { from: new Date(SPRING.from).toISOString(), to: new Date(SPRING.to).toISOString() };
    const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, { ...range, top: 100 }, headers);
    expectMatches(scanStats, inWindow(SPRING.from, SPRING.to, [PAGE_B]), 'DAY', 'UTC');
    for (const { code } of scanStats.topCodes) expect(code.pageId).toBe(PAGE_B);
    const forbidden = await execute(gateway.url, ScanStatsDocument, { ...range, pageId: TEST_PAGE_ID }, headers);
    expect(forbidden.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });
    const hidden = await execute(gateway.url, ScanStatsDocument, { ...range, codeId: codeIds.get(`${TEST_PAGE_ID}:table-1`) }, headers);
    expect(hidden.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeId' });
  });
});
