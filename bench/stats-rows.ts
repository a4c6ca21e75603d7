/**
 * Rows 14 to 16: statistics whose cost is flat in the number of scans.
 *
 * 14. scanStats for one page, DAY over 30 days in Europe/Berlin (across the March DST
 *     change), asked over HTTP of a gateway on 10,000,000 scans, beside the same query on
 *     10,000 scans (a second gateway, up at the same time, queried in alternating rounds). Both files are seeded with raw SQL (scans spread evenly over the
 *     window, about a million people) and their rollups built by the migration's backfill.
 * 15. Batched ingest through the real ScanWriter on a SQLite file, with the rollup step
 *     and without it, rounds alternating: 16 concurrent requests of 100 scans, 50 refs,
 *     every scan a new person.
 * 16. Unique people at 1,000,000 distinct people: sketches of ten overlapping slices
 *     merged, against the exact count.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { createDataSource } from '../src/app/data-source';
import { Database } from '../src/db/database';
import { Scan } from '../src/scans/scan.entity';
import { ScanKind } from '../src/scans/scan-kind';
import { ScanWriter, type IngestStep, type TransactionSql } from '../src/scans/scan.store';
import { PeopleSketch, personHash } from '../src/stats/people-sketch';
import { backfillRollups, ScanRollups } from '../src/stats/scan-rollups';
import type { GatewayProcess } from './gateway-process';
import { ms, num, percent, type RowResult } from './report';
import { benchRef, createSchema, seedCodes } from './seed';
import { databaseWithCodes, graphql, inRowDirectory, withGateway, type BenchContext } from './rows';
import { median, summarize } from './stats';

const quickOf = (context: BenchContext) => context.scale.roundMs < 5_000;

// ---------------------------------------------------------------- row 14

/** The window asked for: 30 local days of Europe/Berlin, the change to summer time inside. */
const WINDOW_FROM = Date.parse('2026-03-10T23:00:00Z'); // 2026-03-11 00:00 in Berlin
const WINDOW_TO = Date.parse('2026-04-09T22:00:00Z'); // 2026-04-10 00:00 in Berlin
const STATS_CODES = 100;

const SCAN_STATS = `query Stats($pageId: ID, $from: DateTime!, $to: DateTime!) {
  scanStats(pageId: $pageId, from: $from, to: $to, interval: DAY, timeZone: "Europe/Berlin") {
    total firstTime returning uniquePeople visits
    buckets { start total firstTime returning uniquePeople visits }
    bySource { source count }
    topCodes(first: 10) { code { id ref } count }
  }
}`;

interface StatsAnswer {
  scanStats: { total: number; uniquePeople: number; buckets: unknown[] };
}

/** TransactionSql on a better-sqlite3 handle, for the backfill. */
function sqliteSql(handle: BetterSqlite3.Database): TransactionSql {
  const prepared = new Map<string, BetterSqlite3.Statement>();
  return {
    kind: 'sqlite',
    param: () => '?',
    query: <Row>(sql: string, parameters: unknown[]) => {
      let statement = prepared.get(sql);
      if (!statement) {
        statement = handle.prepare(sql);
        prepared.set(sql, statement);
      }
      if (statement.reader) return Promise.resolve(statement.all(...parameters) as Row[]);
      statement.run(...parameters);
      return Promise.resolve([]);
    },
  };
}

/**
 * `scans` scans of one page, evenly over the window, on STATS_CODES refs, a tenth first
 * time, three sources (one of them none), by `people` people; then their rollups, built
 * as the migration builds them for a database that had scans before.
 */
export async function seedStatsDatabase(
  path: string,
  pageId: string,
  scans: number,
  people: number,
): Promise<{ seedMs: number; backfillMs: number }> {
  await createSchema(path);
  seedCodes(path, { pageId, count: STATS_CODES });
  const started = performance.now();
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const span = WINDOW_TO - WINDOW_FROM;
  const insert = db.prepare(
    `WITH RECURSIVE s(i) AS (SELECT @first UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @last),
       t(i, at) AS (SELECT i, @from + (i * @span) / @count FROM s)
     INSERT INTO scan (id, page_id, ref, kind, source, sender_hash, occurred_at, received_at)
     SELECT printf('%08x-%04x-8000-0000-%012x', at >> 16, at & 65535, i), @pageId,
       printf('bench-%06d', i % @codes),
       CASE WHEN i % 10 = 0 THEN 'POSTBACK' ELSE 'REFERRAL' END,
       CASE i % 3 WHEN 0 THEN 'SHORTLINK' WHEN 1 THEN 'MESSENGER_CODE' ELSE NULL END,
       printf('%064x', (i * 7919) % @people), at, at + 40
     FROM t`,
  );
  const CHUNK = 1_000_000;
  for (let first = 0; first < scans; first += CHUNK) {
    const last = Math.min(scans, first + CHUNK);
    db.transaction(() => insert.run({ first, last, from: WINDOW_FROM, span, count: scans, pageId, codes: STATS_CODES, people }))();
  }
  const seedMs = performance.now() - started;
  const backfillStarted = performance.now();
  db.exec('BEGIN');
  await backfillRollups(sqliteSql(db));
  db.exec('COMMIT');
  const backfillMs = performance.now() - backfillStarted;
  db.pragma('journal_mode = WAL');
  db.close();
  const file = openSync(path, 'r+');
  fsyncSync(file);
  closeSync(file);
  return { seedMs, backfillMs };
}

/** The exact distinct people of the window, by brute force over the scans. */
function exactPeople(path: string): number {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    const row = db
      .prepare(`SELECT COUNT(DISTINCT sender_hash) AS people FROM scan WHERE occurred_at >= ? AND occurred_at < ?`)
      .get(WINDOW_FROM, WINDOW_TO) as { people: number };
    return row.people;
  } finally {
    db.close();
  }
}

interface QueryRun {
  scans: number;
  p50: number;
  p99: number;
  max: number;
  uniquePeople: number;
  exactPeople: number;
}

/** Queries of one round on each database: rounds alternate, so both share the machine's load as it changes. */
const ROUND_QUERIES = 100;

/** Both databases served at once; `queries` sequential queries of each, in alternating rounds of ROUND_QUERIES. */
async function measureStats(context: BenchContext, databases: { path: string; scans: number }[], queries: number): Promise<QueryRun[]> {
  const variables = { pageId: context.pageId, from: new Date(WINDOW_FROM).toISOString(), to: new Date(WINDOW_TO).toISOString() };
  const serve = async (index: number, gateways: GatewayProcess[]): Promise<QueryRun[]> => {
    if (index < databases.length) {
      const { path, scans } = databases[index];
      return withGateway(context, `row14-${scans}`, path, (gateway) => serve(index + 1, [...gateways, gateway]));
    }
    const answers: StatsAnswer[] = [];
    for (const [index, gateway] of gateways.entries()) {
      let answer: StatsAnswer | undefined;
      for (let warm = 0; warm < 10; warm += 1) answer = await graphql<StatsAnswer>(gateway, SCAN_STATS, variables);
      const scans = databases[index].scans;
      if (answer?.scanStats.total !== scans) throw new Error(`scanStats counted ${answer?.scanStats.total} scans, ${scans} were seeded`);
      if (answer.scanStats.buckets.length !== 30) throw new Error(`scanStats answered ${answer.scanStats.buckets.length} buckets, not 30`);
      answers.push(answer);
    }
    const latencies = gateways.map(() => [] as number[]);
    while (latencies[0].length < queries) {
      for (const [index, gateway] of gateways.entries()) {
        for (let query = 0; query < Math.min(ROUND_QUERIES, queries - latencies[index].length); query += 1) {
          const started = performance.now();
          await graphql<StatsAnswer>(gateway, SCAN_STATS, variables);
          latencies[index].push(performance.now() - started);
        }
      }
    }
    return databases.map(({ path, scans }, index) => {
      const summary = summarize(latencies[index]);
      return {
        scans,
        p50: summary.p50,
        p99: summary.p99,
        max: summary.max,
        uniquePeople: answers[index].scanStats.uniquePeople,
        exactPeople: exactPeople(path),
      };
    });
  };
  return serve(0, []);
}

export async function statsAtScale(context: BenchContext): Promise<RowResult> {
  const quick = quickOf(context);
  const bigScans = quick ? 50_000 : 10_000_000;
  const smallScans = 10_000;
  const people = quick ? 20_011 : 1_000_003;
  const queries = quick ? 50 : 1_000;
  return inRowDirectory(context, 'row14', async (directory) => {
    // Both seeded first, then both measured, one after the other in the same conditions.
    const paths: string[] = [];
    for (const scans of [smallScans, bigScans]) {
      const path = join(directory, `stats-${scans}.sqlite`);
      const seeded = await seedStatsDatabase(path, context.pageId, scans, people);
      context.log(
        `row 14: seeded ${num(scans, 0)} scans in ${num(seeded.seedMs / 1000, 1)} s, rollups backfilled in ${num(seeded.backfillMs / 1000, 1)} s`,
      );
      paths.push(path);
    }
    const runs = await measureStats(
      context,
      [smallScans, bigScans].map((scans, index) => ({ path: paths[index], scans })),
      queries,
    );
    for (const run of runs) context.log(`row 14: ${num(run.scans, 0)} scans: p50 ${ms(run.p50)}, p99 ${ms(run.p99)}, max ${ms(run.max)}`);
    const [small, big] = runs;
    // Speed relative to the small database: its median latency over the big one's.
    const ratio = small.p50 / big.p50;
    return {
      row: 14,
      what: `scanStats DAY over 30 days Europe/Berlin at ${num(bigScans, 0)} scans (one page, ${num(people, 0)} people), over HTTP`,
      measured: `p99 ${ms(big.p99)}, p50 ${ms(big.p50)}; ratio ${num(ratio, 2)} of 10,000 scans`,
      floor: `the same query at ${num(small.scans, 0)} scans: p99 ${ms(small.p99)}, p50 ${ms(small.p50)}`,
      target: 'p99 < 50 ms and ≥ 0.9 of the query at 10,000 scans',
      met: big.p99 < 50 && ratio >= 0.9,
      data: { small, big, ratio, queries },
      notes: [
        `row 14: uniquePeople over the window ${num(big.uniquePeople, 0)} against ${num(big.exactPeople, 0)} exactly ` +
          `(${num((Math.abs(big.uniquePeople - big.exactPeople) / big.exactPeople) * 100, 2)} %); at 10,000 scans ${num(small.uniquePeople, 0)} against ${num(small.exactPeople, 0)}`,
      ],
    };
  });
}

// ---------------------------------------------------------------- row 15

const INGEST_REFS = 50;
const INGEST_BATCH = 100;
const INGEST_CONCURRENCY = 16;

let scanSerial = 0;

/** A request's scans as the webhook makes them: the event time now, a new person each. */
function requestScans(pageId: string): Scan[] {
  const now = Date.now();
  const receivedAt = new Date(now);
  return Array.from({ length: INGEST_BATCH }, () => {
    scanSerial += 1;
    const time = now.toString(16).padStart(12, '0');
    return Object.assign(new Scan(), {
      id: `${time.slice(0, 8)}-${time.slice(8)}-8000-0000-${scanSerial.toString(16).padStart(12, '0')}`,
      pageId,
      ref: benchRef(scanSerial % INGEST_REFS),
      kind: scanSerial % 10 === 0 ? ScanKind.POSTBACK : ScanKind.REFERRAL,
      source: 'SHORTLINK',
      senderHash: createHash('sha256').update(`bench-person-${scanSerial}`).digest('hex'),
      occurredAt: new Date(now),
      receivedAt,
    });
  });
}

/** Scans per second the writer stores in `durationMs`, INGEST_CONCURRENCY requests always in flight. */
async function ingestRound(writer: ScanWriter, pageId: string, durationMs: number): Promise<number> {
  // Made as they are sent (a hash per scan, the same cost with or without rollups): made
  // ahead, a round's hundreds of thousands of scans would weigh on the collector throughout.
  let stored = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const worker = async () => {
    while (performance.now() < deadline) {
      // Not `stored += await …`: that reads `stored` before the await, losing the other workers' additions.
      const events = await writer.write(requestScans(pageId));
      stored += events.length;
    }
  };
  await Promise.all(Array.from({ length: INGEST_CONCURRENCY }, worker));
  return stored / ((performance.now() - started) / 1000);
}

export async function ingestWithRollups(context: BenchContext): Promise<RowResult> {
  const quick = quickOf(context);
  const rounds = quick ? 1 : 5;
  const roundMs = quick ? 1_000 : 5_000;
  return inRowDirectory(context, 'row15', async (directory) => {
    const open = async (name: string, steps: (db: Database) => IngestStep[]) => {
      const path = await databaseWithCodes(context, join(directory, name), INGEST_REFS);
      const db = await Database.open(createDataSource({ kind: 'sqlite', path }));
      return { db, writer: new ScanWriter(db, steps(db)) };
    };
    const without = await open('without', () => []);
    const withRollups = await open('with', (db) => [new ScanRollups(db)]);
    const perSecond = { without: [] as number[], with: [] as number[] };
    try {
      await ingestRound(without.writer, context.pageId, 300);
      await ingestRound(withRollups.writer, context.pageId, 300);
      for (let round = 1; round <= rounds; round += 1) {
        perSecond.without.push(await ingestRound(without.writer, context.pageId, roundMs));
        perSecond.with.push(await ingestRound(withRollups.writer, context.pageId, roundMs));
        context.log(
          `row 15 round ${round}: ${num(perSecond.with[round - 1])} scans/s with rollups, ${num(perSecond.without[round - 1])} without`,
        );
      }
    } finally {
      await without.db.close();
      await withRollups.db.close();
    }
    const measured = median(perSecond.with);
    const floor = median(perSecond.without);
    return {
      row: 15,
      what: `batched ingest with rollups maintained (ScanWriter on SQLite, ${INGEST_CONCURRENCY} concurrent requests of ${INGEST_BATCH} scans, ${INGEST_REFS} refs)`,
      measured: `${num(measured)} scans/s; ratio ${percent(measured / floor)}`,
      floor: `the same without the rollup step: ${num(floor)} scans/s`,
      target: '≥ 0.9 of the same without rollups',
      met: measured / floor >= 0.9,
      data: { with: perSecond.with, without: perSecond.without, ratio: measured / floor },
    };
  });
}

// ---------------------------------------------------------------- row 16

export function uniquePeopleAtScale(context: BenchContext): Promise<RowResult> {
  const people = quickOf(context) ? 200_000 : 1_000_000;
  const slices = 10;
  const started = performance.now();
  // Ten slices of 150,000 people each, overlapping by a third: the union is every person once.
  const merged = new PeopleSketch();
  const step = people / slices;
  for (let slice = 0; slice < slices; slice += 1) {
    const sketch = new PeopleSketch();
    for (let person = slice * step; person < slice * step + 1.5 * step; person += 1) {
      sketch.add(
        personHash(
          createHash('sha256')
            .update(`person-${person % people}`)
            .digest('hex'),
        ),
      );
    }
    merged.merge(sketch);
  }
  const estimate = merged.estimate();
  const error = Math.abs(estimate - people) / people;
  context.log(`row 16: ${num(estimate, 0)} estimated for ${num(people, 0)} people in ${ms(performance.now() - started)}`);
  return Promise.resolve({
    row: 16,
    what: `unique people at ${num(people, 0)} people (${slices} overlapping sketches merged)`,
    measured: `${num(estimate, 0)}: error ${num(error * 100, 2)} %`,
    floor: `exact: ${num(people, 0)}`,
    target: 'error < 2 %',
    met: error < 0.02,
    data: { people, estimate, error },
  });
}
