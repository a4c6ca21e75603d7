import {
  CodeStatsDocument,
  CreateApiKeyDocument,
  GenerateTrackedCodeDocument,
  RegisterPageDocument,
  ScansDocument,
  ScanStatsDocument,
} from './generated/graphql';
import type { ScanStatsQuery, StatsInterval } from './generated/graphql';
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
const INTERVALS: StatsInterval[] = ['HOUR', 'DAY', 'WEEK', 'MONTH'];
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Both 2026 DST changes of Europe (29 March, 25 October) and of the United States (8 March, 1 November). */
const SPRING = { from: Date.parse('2026-03-05T00:00:00Z'), to: Date.parse('2026-04-02T00:00:00Z') };
const AUTUMN = { from: Date.parse('2026-10-20T00:00:00Z'), to: Date.parse('2026-11-04T00:00:00Z') };
/** The instants of the 2026 changes: the first local hour after each. */
const DST_CHANGES: [string, number][] = [
  ['Europe/Berlin', Date.parse('2026-03-29T01:00:00Z')], // 02:00 CET is skipped: 03:00 CEST
  ['Europe/Berlin', Date.parse('2026-10-25T01:00:00Z')], // 02:00 again, CET
  ['America/New_York', Date.parse('2026-03-08T07:00:00Z')], // 02:00 EST is skipped: 03:00 EDT
  ['America/New_York', Date.parse('2026-11-01T06:00:00Z')], // 01:00 again, EST
];

/**
 * Scans on local boundaries and 1 ms either side: for every zone, at least one boundary of each
 * interval inside a window asked of that (zone, interval) (checked by a test below).
 */
const BOUNDARIES = [
  ...new Set(
    [
      '2026-03-28T23:00:00Z', // Berlin, 29 March 00:00 (+01:00)
      '2026-03-29T22:00:00Z', // Berlin, Monday 30 March 00:00 (+02:00): after the 23-hour day
      '2026-10-24T22:00:00Z', // Berlin, 25 October 00:00 (+02:00)
      '2026-10-25T23:00:00Z', // Berlin, 26 October 00:00 (+01:00): after the 25-hour day
      '2026-10-25T00:30:00Z', // Berlin, the first 02:30 of the repeated hour
      '2026-10-25T01:30:00Z', // Berlin, the second 02:30
      '2026-10-31T23:00:00Z', // Berlin, 1 November 00:00: a month boundary
      '2026-03-08T05:00:00Z', // New York, 8 March 00:00 (EST): the 23-hour day
      '2026-03-09T04:00:00Z', // New York, 9 March 00:00 (EDT): after it
      '2026-03-30T04:00:00Z', // New York, Monday 30 March 00:00
      '2026-11-01T04:00:00Z', // New York, 1 November 00:00 (EDT): a month boundary, the 25-hour day
      '2026-11-01T05:00:00Z', // New York, 1 November 01:00 (EDT); 06:00Z is 01:00 again (EST)
      '2026-11-02T05:00:00Z', // New York, Monday 2 November 00:00 (EST): after the 25-hour day
      '2026-03-15T18:30:00Z', // Kolkata, 16 March 00:00
      '2026-03-29T18:30:00Z', // Kolkata, Monday 30 March 00:00
      '2026-10-31T18:30:00Z', // Kolkata, 1 November 00:00: a month boundary
      '2026-03-15T18:15:00Z', // Kathmandu, 16 March 00:00
      '2026-03-29T18:15:00Z', // Kathmandu, Monday 30 March 00:00
      '2026-10-31T18:15:00Z', // Kathmandu, 1 November 00:00: a month boundary
      '2026-03-30T00:00:00Z', // UTC, Monday 30 March
      '2026-11-01T00:00:00Z', // UTC, 1 November
    ]
      .map(Date.parse)
      .concat(DST_CHANGES.map(([, change]) => change)),
  ),
];

/** Seeds of the random questions: a failure names its seed, and `-t "seed <n>"` asks the same questions again. */
const PROPERTY_SEEDS = [11, 22, 33, 44, 55, 66, 77, 88];
const QUESTIONS_PER_SEED = 12;

/** The same scans on every run, so that a failure can be replayed. */
function randomSource(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

const iso = (instant: number) => new Date(instant).toISOString();

// ---------------------------------------------------------------------------------------
// The oracle: buckets from the local calendar as Intl reports it (not the gateway's Luxon),
// counts by brute force over the scans and visits read back from the database.

const formats = new Map<string, Intl.DateTimeFormat>();

function localParts(instant: number, timeZone: string): Record<string, number> {
  let format = formats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
      timeZoneName: 'longOffset',
    });
    formats.set(timeZone, format);
  }
  const parts = format.formatToParts(new Date(instant));
  const value = (type: string) => parts.find((part) => part.type === type)?.value ?? '';
  const offset = value('timeZoneName'); // GMT+05:45, or GMT for UTC
  return {
    year: Number(value('year')),
    month: Number(value('month')),
    day: Number(value('day')),
    hour: Number(value('hour')),
    minute: Number(value('minute')),
    second: Number(value('second')),
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

/** Farther than any bucket of the interval is long (a DST day lasts 25 hours, a month 31 days). */
const REACH_MS: Record<StatsInterval, number> = { HOUR: 2 * HOUR_MS, DAY: 2 * DAY_MS, WEEK: 8 * DAY_MS, MONTH: 32 * DAY_MS };

/**
 * The first instant, to the millisecond, of the bucket holding `instant` (`direction` -1), or
 * of the bucket after it (+1): bisection on bucketKey, each bucket being one run of instants.
 */
function bucketEdge(instant: number, interval: StatsInterval, timeZone: string, direction: -1 | 1): number {
  const key = bucketKey(instant, interval, timeZone);
  let inside = instant;
  let outside = instant + direction * REACH_MS[interval];
  if (bucketKey(outside, interval, timeZone) === key)
    throw new Error(`oracle: a ${interval} bucket of ${timeZone} reaches past ${iso(outside)}`);
  while (Math.abs(outside - inside) > 1) {
    const middle = inside + Math.trunc((outside - inside) / 2);
    if (bucketKey(middle, interval, timeZone) === key) inside = middle;
    else outside = middle;
  }
  return direction < 0 ? inside : outside;
}

/** The oracle checks itself: a bucket starts on the local hour, at midnight, on a Monday, on the 1st. */
function isLocalBoundary(instant: number, interval: StatsInterval, timeZone: string): boolean {
  const local = localParts(instant, timeZone);
  const onTheHour = local.minute === 0 && local.second === 0 && instant % 1000 === 0;
  const atMidnight = onTheHour && local.hour === 0;
  switch (interval) {
    case 'HOUR':
      return onTheHour;
    case 'DAY':
      return atMidnight;
    case 'WEEK':
      return atMidnight && new Date(Date.UTC(local.year, local.month - 1, local.day)).getUTCDay() === 1;
    default:
      return atMidnight && local.day === 1;
  }
}

/** The local boundaries of the buckets of [from, to): the first holds `from`, the last the instant before `to`. */
function bucketStarts(from: number, to: number, interval: StatsInterval, timeZone: string): number[] {
  const starts = [bucketEdge(from, interval, timeZone, -1)];
  for (let next = bucketEdge(from, interval, timeZone, 1); next < to; next = bucketEdge(next, interval, timeZone, 1)) starts.push(next);
  for (const start of starts) {
    if (!isLocalBoundary(start, interval, timeZone)) throw new Error(`oracle: ${iso(start)} is no ${interval} boundary in ${timeZone}`);
  }
  return starts;
}

/** A scan as the database holds it: read back through the `scans` query, with the person from its row. */
interface StoredScan {
  id: string;
  pageId: string;
  ref: string | null;
  kind: string;
  source: string | null;
  occurredAt: number;
  /** the code the `scans` query names; null for an orphan scan */
  codeId: string | null;
  /** the keyed hash of the PSID (not exposed by the API): a person of a page */
  senderHash: string;
}

interface StoredVisit {
  codeId: string;
  pageId: string;
  at: number;
  visits: number;
}

interface Stored {
  scans: StoredScan[];
  visits: StoredVisit[];
}

/** Every scan through the `scans` query, page after page, with its sender hash from the table; and the visits. */
async function readStored(gateway: TestGateway): Promise<Stored> {
  const scans: StoredScan[] = [];
  let after: string | undefined;
  do {
    const { scans: page } = await executeOk(gateway.url, ScansDocument, { first: 100, after });
    for (const { node } of page.edges) {
      scans.push({ ...node, occurredAt: Date.parse(node.occurredAt), codeId: node.code?.id ?? null, senderHash: '' });
    }
    after = page.pageInfo.hasNextPage ? (page.pageInfo.endCursor ?? undefined) : undefined;
  } while (after !== undefined);
  const rows: { id: string; sender_hash: string }[] = await gateway.db.dataSource.query('SELECT id, sender_hash FROM scan');
  const hashes = new Map(rows.map((row) => [row.id, row.sender_hash]));
  expect(scans.map((scan) => scan.id).sort()).toEqual([...hashes.keys()].sort());
  for (const scan of scans) scan.senderHash = hashes.get(scan.id) as string;
  return { scans, visits: await readVisits(gateway) };
}

/** The visits as the table holds them: per code and millisecond, with the code's page. */
async function readVisits(gateway: TestGateway): Promise<StoredVisit[]> {
  const rows: { code_id: string; page_id: string; at: number | string; visits: number | string }[] = await gateway.db.dataSource.query(
    'SELECT v.code_id AS code_id, c.page_id AS page_id, v.at AS at, v.visits AS visits FROM code_visit v JOIN code c ON c.id = v.code_id',
  );
  return rows.map((row) => ({ codeId: row.code_id, pageId: row.page_id, at: Number(row.at), visits: Number(row.visits) }));
}

/** What a test asks: a window, its buckets, and whose scans (a page, a code, or every page the key sees). */
interface Question {
  from: number;
  to: number;
  interval: StatsInterval;
  timeZone: string;
  pageId?: string;
  codeId?: string;
  top?: number;
}

const describeQuestion = (question: Question) =>
  JSON.stringify({ ...question, from: iso(question.from), to: iso(question.to) }).replace(/"/g, '');

function counts(scans: StoredScan[]) {
  const firstTime = scans.filter((scan) => scan.kind === ScanKind.POSTBACK).length;
  return {
    total: scans.length,
    firstTime,
    returning: scans.length - firstTime,
    // Exact below 10,000 people; a PSID belongs to one page.
    uniquePeople: new Set(scans.map((scan) => `${scan.pageId}\u0000${scan.senderHash}`)).size,
  };
}

const sumVisits = (visits: StoredVisit[]) => visits.reduce((sum, visit) => sum + visit.visits, 0);

/** The answer by brute force over what the database holds: every field of ScanStats. */
function bruteForce(question: Question, stored: Stored, codes: Map<string, { pageId: string; ref: string | null }>) {
  const { from, to, interval, timeZone } = question;
  const code = question.codeId === undefined ? undefined : codes.get(question.codeId);
  if (question.codeId !== undefined && !code) throw new Error(`oracle: unknown code ${question.codeId}`);
  const pageIds = code ? [code.pageId] : question.pageId !== undefined ? [question.pageId] : null;
  const scans = stored.scans.filter(
    (scan) =>
      scan.occurredAt >= from &&
      scan.occurredAt < to &&
      (pageIds === null || pageIds.includes(scan.pageId)) &&
      (code === undefined || scan.ref === code.ref),
  );
  const visits = stored.visits.filter(
    (visit) =>
      visit.at >= from && visit.at < to && (code ? visit.codeId === question.codeId : pageIds === null || pageIds.includes(visit.pageId)),
  );
  const starts = bucketStarts(from, to, interval, timeZone);
  const indexOf = new Map(starts.map((start, index) => [bucketKey(start, interval, timeZone), index]));
  const bucketOf = (instant: number) => {
    const index = indexOf.get(bucketKey(instant, interval, timeZone));
    if (index === undefined) throw new Error(`oracle: ${iso(instant)} lies in no bucket of ${describeQuestion(question)}`);
    return index;
  };
  const scansOf = starts.map((): StoredScan[] => []);
  for (const scan of scans) scansOf[bucketOf(scan.occurredAt)].push(scan);
  const visitsOf = starts.map((): StoredVisit[] => []);
  for (const visit of visits) visitsOf[bucketOf(visit.at)].push(visit);

  const sources = new Map<string | null, number>();
  for (const scan of scans) sources.set(scan.source, (sources.get(scan.source) ?? 0) + 1);
  const perCode = new Map<string, number>();
  for (const scan of scans) if (scan.codeId !== null) perCode.set(scan.codeId, (perCode.get(scan.codeId) ?? 0) + 1);
  return {
    answer: {
      from: iso(from),
      to: iso(to),
      interval,
      timeZone,
      ...counts(scans),
      visits: sumVisits(visits),
      buckets: starts.map((start, index) => ({ start: iso(start), ...counts(scansOf[index]), visits: sumVisits(visitsOf[index]) })),
    },
    bySource: [...sources.entries()].map(([source, count]) => ({ source, count })),
    perCode,
    codeOfScans: new Map(stored.scans.flatMap((scan) => (scan.codeId === null ? [] : [[scan.codeId, [scan.pageId, scan.ref]] as const]))),
  };
}

const bySourceName = (a: { source: string | null }, b: { source: string | null }) => (a.source ?? '').localeCompare(b.source ?? '');

/** Every field of the answer against the brute force: totals, people, visits, each bucket with its exact local start, sources, top codes. */
function expectAgrees(
  stats: ScanStatsQuery['scanStats'],
  question: Question,
  stored: Stored,
  codes: Map<string, { pageId: string; ref: string | null }>,
): void {
  const expected = bruteForce(question, stored, codes);
  const { bySource, topCodes, ...answer } = stats;
  expect(answer).toEqual(expected.answer);
  // Sources: the brute force's counts, largest first (ties in any order).
  expect([...bySource].sort(bySourceName)).toEqual([...expected.bySource].sort(bySourceName));
  expect(bySource.map(({ count }) => count)).toEqual(expected.bySource.map(({ count }) => count).sort((a, b) => b - a));
  // Top codes: as many as asked, the largest counts (ties in any order), each code with its own count.
  const ranked = [...expected.perCode.values()].sort((a, b) => b - a).slice(0, question.top ?? 10);
  expect(topCodes.map(({ count }) => count)).toEqual(ranked);
  expect(new Set(topCodes.map(({ code }) => code.id)).size).toBe(topCodes.length);
  expect(topCodes.map(({ code, count }) => [code.id, code.pageId, code.ref, count])).toEqual(
    topCodes.map(({ code }) => [code.id, ...(expected.codeOfScans.get(code.id) ?? []), expected.perCode.get(code.id)]),
  );
}

/** Folds the rollup rows that ingest left pending, as ingest does once enough have gathered. */
async function foldPendingRollups(gateway: TestGateway, { expectSome = true } = {}): Promise<void> {
  const runner = gateway.db.dataSource.createQueryRunner();
  try {
    await runner.startTransaction();
    const folded = await compactRollups(queryRunnerSql(runner));
    if (expectSome) expect(folded).toBeGreaterThan(0);
    await runner.commitTransaction();
  } finally {
    await runner.release();
  }
}

describe.each(DATABASE_KINDS)('scanStats on %s', (kind) => {
  let gateway: TestGateway;
  const posted: SimulatedScan[] = [];
  const codeIds = new Map<string, string>();
  /** What the database holds, read back after every change. */
  let stored: Stored;
  const codes = () => new Map([...codeIds].map(([key, id]) => [id, { pageId: key.split(':')[0], ref: key.slice(key.indexOf(':') + 1) }]));

  const inWindow = (from: number, to: number, pageIds: string[] = PAGES, ref?: string | null) =>
    stored.scans.filter(
      (scan) => scan.occurredAt >= from && scan.occurredAt < to && pageIds.includes(scan.pageId) && (ref === undefined || scan.ref === ref),
    );

  const ask = async (question: Question, headers?: Record<string, string>) => {
    const { scanStats } = await executeOk(
      gateway.url,
      ScanStatsDocument,
      {
        from: iso(question.from),
        to: iso(question.to),
        interval: question.interval,
        timeZone: question.timeZone,
        pageId: question.pageId,
        codeId: question.codeId,
        top: question.top,
      },
      headers,
    );
    return scanStats;
  };
  const expectAnswered = (stats: ScanStatsQuery['scanStats'], question: Question) => expectAgrees(stats, question, stored, codes());

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
    for (const boundary of BOUNDARIES) for (const delta of [-1, 0, 1]) posted.push(scan(boundary + delta));
    for (let start = 0; start < posted.length; start += 200) {
      expect((await postScans(gateway.url, posted.slice(start, start + 200))).status).toBe(200);
      // The first scans folded into the rollup rows, the others left pending: the statistics read both.
      if (start === 200) await foldPendingRollups(gateway);
    }
    stored = await readStored(gateway);
    expect(stored.scans).toHaveLength(posted.length);
  });

  const cases: [string, StatsInterval, { from: number; to: number }][] = [];
  for (const timeZone of ZONES) {
    cases.push([timeZone, 'DAY', SPRING], [timeZone, 'DAY', AUTUMN], [timeZone, 'WEEK', SPRING], [timeZone, 'MONTH', AUTUMN]);
    // HOUR over the days of the changes, 3 days at most (72 buckets): Europe's, then the United States'.
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-03-28T00:00:00Z'), to: Date.parse('2026-03-31T00:00:00Z') }]);
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-10-24T12:00:00Z'), to: Date.parse('2026-10-26T12:00:00Z') }]);
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-03-07T12:00:00Z'), to: Date.parse('2026-03-09T12:00:00Z') }]);
    cases.push([timeZone, 'HOUR', { from: Date.parse('2026-10-31T12:00:00Z'), to: Date.parse('2026-11-02T12:00:00Z') }]);
  }

  it('has scans on a bucket edge, and 1 ms either side, in a window asked of every zone and interval', () => {
    const scanned = new Set(stored.scans.map((scan) => scan.occurredAt));
    const onEdge = (instant: number) => [instant - 1, instant, instant + 1].every((at) => scanned.has(at));
    const asked = (timeZone: string, interval: StatsInterval, instant: number) =>
      cases.some(([zone, of, window]) => zone === timeZone && of === interval && window.from < instant && instant + 1 < window.to);
    const covered = ZONES.flatMap((timeZone) =>
      INTERVALS.map((interval) => {
        const edges = BOUNDARIES.filter(
          (boundary) =>
            onEdge(boundary) && asked(timeZone, interval, boundary) && bucketEdge(boundary, interval, timeZone, -1) === boundary,
        );
        return `${timeZone} ${interval}: ${edges.length > 0 ? 'covered' : 'no scans on an edge'}`;
      }),
    );
    expect(covered).toEqual(ZONES.flatMap((timeZone) => INTERVALS.map((interval) => `${timeZone} ${interval}: covered`)));
    // HOUR windows across each change, with scans on the change and 1 ms either side.
    for (const [timeZone, change] of DST_CHANGES) {
      expect([timeZone, iso(change), onEdge(change), asked(timeZone, 'HOUR', change)]).toEqual([timeZone, iso(change), true, true]);
      expect(bucketEdge(change, 'HOUR', timeZone, -1)).toBe(change);
    }
  });

  it.each(cases)('counts as a brute force over the stored scans does: %s, %s', async (timeZone, interval, window) => {
    const question = { ...window, interval, timeZone };
    expectAnswered(await ask(question), question);
  });

  it('counts [from, to) to the millisecond, on a boundary and 1 ms either side', async () => {
    const midnight = Date.parse('2026-10-24T22:00:00Z');
    for (const [from, to] of [
      [midnight, midnight + 1],
      [midnight - 1, midnight],
      [midnight + 1, Date.parse('2026-10-25T23:00:00Z')],
      [midnight - 1, Date.parse('2026-10-25T23:00:00Z') + 1],
    ]) {
      const question: Question = { from, to, interval: 'DAY', timeZone: 'Europe/Berlin' };
      expectAnswered(await ask(question), question);
    }
  });

  it('narrows to a page and to a code, and ranks sources and codes', async () => {
    const { from, to } = AUTUMN;
    const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };
    const { scanStats: ofB } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B, top: 100 });
    const scansOfB = inWindow(from, to, [PAGE_B]);
    expectAnswered(ofB, { from, to, interval: 'DAY', timeZone: 'UTC', pageId: PAGE_B, top: 100 });

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
    expectAnswered(ofCode, { from, to, interval: 'DAY', timeZone: 'Asia/Kathmandu', codeId });
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
    stored = await readStored(gateway);
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
      stored = await readStored(gateway);
    };
    const expectCurrent = async () => {
      const { scanStats } = await executeOk(gateway.url, ScanStatsDocument, { ...range, pageId: PAGE_B });
      expectAnswered(scanStats, { ...window, interval: 'DAY', timeZone: 'Europe/Berlin', pageId: PAGE_B });
      const { scanStats: ofCode } = await executeOk(gateway.url, ScanStatsDocument, { ...range, codeId });
      expectAnswered(ofCode, { ...window, interval: 'DAY', timeZone: 'Europe/Berlin', codeId });
      return scanStats;
    };
    await post(['january-1', 'january-2', 'january-3']);
    expect((await expectCurrent()).uniquePeople).toBe(3);
    // The same rows again, with more scans and new people: read anew, not as they were asked before.
    await post(['january-2', 'january-4', 'january-5']);
    const after = await expectCurrent();
    expect([after.total, after.uniquePeople]).toEqual([12, 5]);
  });

  describe('on random questions', () => {
    /**
     * Instants the random windows gather around: the changes, month ends, the weeks of the data.
     * Fixed, so that a seed asks the same questions on every run (today's visits are counted by
     * the windows that reach them, and at their edges by the test before the seeds).
     */
    const ANCHORS = [
      ...DST_CHANGES.map(([, change]) => change),
      Date.parse('2026-11-01T00:00:00Z'),
      Date.parse('2026-04-01T00:00:00Z'),
      Date.parse('2026-01-06T00:00:00Z'),
      SPRING.from + (SPRING.to - SPRING.from) / 2,
      AUTUMN.from + (AUTUMN.to - AUTUMN.from) / 2,
    ];
    const REFS_ASKED = [...REFS, 'visited'];

    beforeAll(async () => {
      // A REDIRECT code visited a few times, a few milliseconds apart: visits to count by bucket.
      const { generateCode } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
        input: { pageId: PAGE_B, data: { ref: 'visited' }, imageSize: 100, tracking: 'REDIRECT' },
      });
      codeIds.set(`${PAGE_B}:visited`, generateCode.id);
      const path = new URL(generateCode.link).pathname;
      for (let visit = 0; visit < 5; visit++) {
        await fetch(`${gateway.url}${path}`, { redirect: 'manual' });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      await eventually(
        async () => sumVisits((await readVisits(gateway)).filter((visit) => visit.codeId === generateCode.id)) === 5,
        10_000,
        'five visits written',
      );
      stored = await readStored(gateway);
    });

    /** An edge of a window near `instant`: any millisecond, a 15-minute mark, a local boundary, or 1 ms off one. */
    const drawEdge = (prng: Prng, instant: number, interval: StatsInterval, timeZone: string) => {
      const mark = Math.floor(instant / (15 * 60_000)) * 15 * 60_000;
      const boundary = bucketEdge(instant, interval, timeZone, -1);
      return prng.pick([instant, mark, mark + prng.pick([-1, 1]), boundary, boundary + prng.pick([-1, 1])]);
    };

    const drawQuestion = (prng: Prng): Question => {
      const interval = prng.pick(INTERVALS);
      const timeZone = prng.pick(ZONES);
      // A few dozen buckets at most; one window in five 40 minutes long at most (mostly raw scans at its edges).
      const longest = { HOUR: 3 * DAY_MS, DAY: 40 * DAY_MS, WEEK: 20 * 7 * DAY_MS, MONTH: 400 * DAY_MS }[interval];
      const length = prng.chance(0.2) ? 1 + prng.int(40 * 60_000) : 1 + prng.int(longest);
      const anchor = prng.pick(ANCHORS);
      const start = anchor - prng.int(length);
      // Now and then from or to on the anchor itself or 1 ms off it: a change, a month's start, on the window's edge.
      const onAnchor = prng.int(5);
      const from = onAnchor === 0 ? anchor + prng.pick([-1, 0, 1]) : drawEdge(prng, start, interval, timeZone);
      let to = onAnchor === 1 ? anchor + prng.pick([-1, 0, 1]) : drawEdge(prng, start + length, interval, timeZone);
      if (to <= from) to = from + 1 + prng.int(40 * 60_000);
      const question: Question = { from, to, interval, timeZone };
      const scope = prng.int(4);
      if (scope === 1) question.pageId = prng.pick(PAGES);
      if (scope >= 2) question.codeId = prng.pick([...codeIds.values()]);
      // Fewer than the codes scanned, now and then: the largest first, cut.
      if (prng.chance(0.7)) question.top = prng.chance(0.5) ? 1 + prng.int(8) : 1 + prng.int(100);
      return question;
    };

    /** Scans at the question's edges (on them, 1 ms either side, within 15 minutes), on some of its bucket boundaries, and inside. */
    const scansFor = (prng: Prng, question: Question): SimulatedScan[] => {
      const { from, to } = question;
      const instants = [from - 1, from, from + 1, to - 1, to, to + 1];
      for (let index = 0; index < 3; index++) instants.push(from + prng.int(15 * 60_000), to - 1 - prng.int(15 * 60_000));
      const starts = bucketStarts(from, to, question.interval, question.timeZone);
      for (let index = 0; index < 3; index++) {
        const boundary = prng.pick(starts);
        instants.push(boundary - 1, boundary, boundary + 1);
      }
      for (let index = 0; index < 8; index++) instants.push(from + prng.int(to - from));
      const code = question.codeId === undefined ? undefined : codes().get(question.codeId);
      return instants.map((timestamp) => {
        const ofCode = code !== undefined && prng.chance(0.5);
        return scanOf(ofCode ? code.pageId : prng.pick(PAGES), {
          ref: ofCode ? code.ref : prng.pick(REFS_ASKED),
          kind: prng.chance(0.3) ? ScanKind.POSTBACK : ScanKind.REFERRAL,
          source: prng.pick(SOURCES),
          senderPsid: `person-${prng.int(40)}`,
          timestamp,
        });
      });
    };

    it('counts a visit by the time of its GET, on the edge of the window and 1 ms either side', async () => {
      const visited = codeIds.get(`${PAGE_B}:visited`) as string;
      const instants = stored.visits.filter((visit) => visit.codeId === visited).map((visit) => visit.at);
      for (const at of [Math.min(...instants), Math.max(...instants)]) {
        for (const [from, to] of [
          [at, at + 1],
          [at - 1, at],
          [at + 1, at + HOUR_MS],
          [at - HOUR_MS, at],
          [at - HOUR_MS, at + 1],
        ]) {
          for (const scope of [{}, { pageId: PAGE_B }, { codeId: visited }]) {
            const question: Question = { from, to, interval: 'HOUR', timeZone: 'Asia/Kathmandu', ...scope };
            expectAnswered(await ask(question), question);
          }
        }
      }
    });

    it.each(PROPERTY_SEEDS)('agrees with a brute force over the stored scans on random questions (seed %i)', async (seed) => {
      const prng = new Prng(seed);
      const questions = Array.from({ length: QUESTIONS_PER_SEED }, () => drawQuestion(prng));
      const scans = questions.flatMap((question) => scansFor(prng, question));
      posted.push(...scans);
      for (let start = 0; start < scans.length; start += 200) {
        expect((await postScans(gateway.url, scans.slice(start, start + 200))).status).toBe(200);
      }
      // Some seeds read their scans from pending rows, others from folded ones (a background fold may have taken them).
      if (prng.chance(0.5)) await foldPendingRollups(gateway, { expectSome: false });
      stored = await readStored(gateway);
      for (const question of questions) {
        const stats = await ask(question);
        try {
          expectAnswered(stats, question);
        } catch (error) {
          (error as Error).message = `seed ${seed}, ${describeQuestion(question)}:\n${(error as Error).message}`;
          throw error;
        }
      }
    });
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
    expectAnswered(scanStats, { ...SPRING, interval: 'DAY', timeZone: 'UTC', pageId: PAGE_B, top: 100 });
    for (const { code } of scanStats.topCodes) expect(code.pageId).toBe(PAGE_B);
    const forbidden = await execute(gateway.url, ScanStatsDocument, { ...range, pageId: TEST_PAGE_ID }, headers);
    expect(forbidden.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });
    const hidden = await execute(gateway.url, ScanStatsDocument, { ...range, codeId: codeIds.get(`${TEST_PAGE_ID}:table-1`) }, headers);
    expect(hidden.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeId' });
  });
});
