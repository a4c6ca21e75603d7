/**
 * Rows 18 to 20: PostgreSQL with two gateway processes (A and B) sharing one database and
 * one Redis, as a multi-instance deployment runs. Each row creates a database of its own
 * (bench_<pid>_<row>) on the server at BENCH_POSTGRES_URL (default the test server,
 * postgres://postgres@127.0.0.1:5432/test) and drops it afterwards; Redis is BENCH_REDIS_URL
 * (default redis://127.0.0.1:6379), shared with others, so each row's gateways use a
 * REDIS_PREFIX (and PAGE_ID) of their own. When either cannot be reached, the rows are reported as
 * skipped, not broken.
 *
 * - 18: batched webhooks sent to both gateways, beside raw `pg` multi-row INSERTs of the very
 *   rows they stored, one transaction per batch, at the same concurrency, into a fresh
 *   database made by the same migrations.
 * - 19: signed single-scan webhooks, 64 keep-alive senders split over both gateways, over 50
 *   codes and then all on one code (a billboard), beside the bare node:http floor of row 1.
 * - 20: 1,000 subscribers on A, scans posted to B; beside the same scans posted to A.
 */
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createDataSource } from '../src/app/data-source';
import { Database } from '../src/db/database';
import { GatewayProcess } from './gateway-process';
import { HttpFloorServer } from './http-floor';
import type { DeliveryStats, HttpRoundResult, Workload } from './protocol';
import { ms, num, percent, type RowResult } from './report';
import {
  cpuNote,
  deliverySummary,
  describeDelivery,
  Failures,
  graphql,
  httpRound,
  medianOf,
  type BenchContext,
  type MeasuredRound,
} from './rows';
import { benchRef } from './seed';
import { median } from './stats';

const POSTGRES_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const REACH_TIMEOUT_MS = 3_000;

// ---------------------------------------------------------------- PostgreSQL and Redis

/** Why PostgreSQL or Redis cannot be used, or undefined when both answer. Asked once per run. */
let reachability: Promise<string | undefined> | undefined;

function unreachable(): Promise<string | undefined> {
  reachability ??= (async () => {
    const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: REACH_TIMEOUT_MS });
    try {
      await client.connect();
      await client.query('SELECT 1');
    } catch (error) {
      return `no PostgreSQL at ${redact(POSTGRES_URL)} (${error instanceof Error ? error.message : String(error)})`;
    } finally {
      await client.end().catch(() => undefined);
    }
    const redis = await redisPing(REDIS_URL);
    return redis === undefined ? undefined : `no Redis at ${redact(REDIS_URL)} (${redis})`;
  })();
  return reachability;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** PING over a bare socket: undefined when +PONG comes back, else what went wrong. */
function redisPing(url: string): Promise<string | undefined> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const finish = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(REACH_TIMEOUT_MS, () => finish('no answer'));
    socket.once('error', (error) => finish(error.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data: Buffer) => {
      const text = data.toString('utf8');
      finish(text.startsWith('+PONG') ? undefined : `answered ${JSON.stringify(text.slice(0, 80))}`);
    });
  });
}

function databaseUrl(name: string): string {
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

async function admin<T>(work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: REACH_TIMEOUT_MS });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A fresh database for `work`, dropped afterwards (with whatever connections are left). */
async function withDatabase<T>(name: string, work: (url: string) => Promise<T>): Promise<T> {
  await admin(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${name}`);
  });
  try {
    return await work(databaseUrl(name));
  } finally {
    await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
}

/** One query on a database, on a connection of its own. */
async function queryOnce<R extends unknown[] = unknown[]>(url: string, sql: string): Promise<R[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>({ text: sql, rowMode: 'array' })).rows;
  } finally {
    await client.end();
  }
}

/** Every row of a query, as arrays, with the column names. */
async function queryOnceWithFields(url: string, sql: string): Promise<{ columns: string[]; rows: unknown[][] }> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<unknown[]>({ text: sql, rowMode: 'array' });
    return { columns: result.fields.map((field) => field.name), rows: result.rows };
  } finally {
    await client.end();
  }
}

/**
 * What the gateways' PostgreSQL connections are doing, sampled every 100 ms from
 * pg_stat_activity while a round runs: running a statement, waiting for a lock (another
 * transaction holds a row this one needs: the stream's single row, a counter), or idle
 * inside a transaction (waiting for the gateway to send its next statement, locks held).
 * Not part of the figure: it says where the time goes.
 */
class ActivitySampler {
  private readonly client: Client;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  /** while paused (a floor round between the gateway's), nothing is sampled */
  paused = false;
  samples = 0;
  running = 0;
  waitingForLock = 0;
  idleInTransaction = 0;
  /** per kind of statement (STATEMENT_KINDS), the connections waiting for a lock in it, summed over the samples */
  readonly waitingIn = new Map<string, number>();
  /** per kind of statement, the connections idle in a transaction after it, summed over the samples */
  readonly idleAfter = new Map<string, number>();
  /** per kind of statement, the connections running it, summed over the samples */
  readonly runningIn = new Map<string, number>();

  constructor(url: string) {
    this.client = new Client({ connectionString: url });
  }

  async start(): Promise<void> {
    await this.client.connect();
    this.timer = setInterval(() => void this.sample(), 100);
  }

  private async sample(): Promise<void> {
    if (this.busy || this.paused) return;
    this.busy = true;
    try {
      const { rows } = await this.client.query<{ state: string | null; lock: boolean; query: string }>(
        `SELECT state, wait_event_type IS NOT DISTINCT FROM 'Lock' AS lock, left(query, 200) AS query
           FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
      );
      this.samples += 1;
      const add = (counts: Map<string, number>, query: string) => {
        const kind = statementKind(query);
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
      };
      for (const row of rows) {
        if (row.lock) {
          this.waitingForLock += 1;
          add(this.waitingIn, row.query);
        } else if (row.state === 'active') {
          this.running += 1;
          add(this.runningIn, row.query);
        } else if (row.state === 'idle in transaction') {
          this.idleInTransaction += 1;
          add(this.idleAfter, row.query);
        }
      }
    } finally {
      this.busy = false;
    }
  }

  /** Average connections in each state over the samples. */
  async stop(): Promise<{
    samples: number;
    running: number;
    waitingForLock: number;
    idleInTransaction: number;
    waitingIn: Record<string, number>;
    idleAfter: Record<string, number>;
    runningIn: Record<string, number>;
  }> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.client.end();
    const average = (total: number) => (this.samples === 0 ? Number.NaN : total / this.samples);
    const averages = (counts: Map<string, number>) => Object.fromEntries([...counts].map(([kind, total]) => [kind, average(total)]));
    return {
      samples: this.samples,
      running: average(this.running),
      waitingForLock: average(this.waitingForLock),
      idleInTransaction: average(this.idleInTransaction),
      waitingIn: averages(this.waitingIn),
      idleAfter: averages(this.idleAfter),
      runningIn: averages(this.runningIn),
    };
  }
}

/** What an ingest transaction's statement is, by its text (pg_stat_activity's `query`), to tell where time is held. */
const STATEMENT_KINDS: [string, RegExp][] = [
  // The whole transaction as one simple query (BEGIN, pending rollup rows, scan_ingest, COMMIT): its text starts with the BEGIN.
  ['one-trip ingest', /^BEGIN;|scan_ingest\(/],
  ['rollups', /scan_rollup_/],
  ['counters and stream', /ref_counter|scan_stream/],
  ['scan insert', /INSERT INTO scan \(/],
  ['outbox', /relay_outbox/],
];

function statementKind(query: string): string {
  return STATEMENT_KINDS.find(([, pattern]) => pattern.test(query))?.[0] ?? 'other';
}

type Activity = Awaited<ReturnType<ActivitySampler['stop']>>;

function describeActivity(activity: Activity): string {
  const split = (averages: Record<string, number>) =>
    Object.entries(averages)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, average]) => `${kind} ${num(average, 2)}`)
      .join(', ');
  return `PostgreSQL connections of both gateways, average over ${activity.samples} samples: ${num(activity.running, 1)} running a statement (${split(activity.runningIn) || 'none'}), ${num(activity.waitingForLock, 1)} waiting for a row lock (in: ${split(activity.waitingIn) || 'none'}), ${num(activity.idleInTransaction, 1)} idle in a transaction, locks held, waiting for the gateway's next statement (after: ${split(activity.idleAfter) || 'none'})`;
}

// ---------------------------------------------------------------- two gateways

interface Pair {
  a: GatewayProcess;
  b: GatewayProcess;
  pageId: string;
}

/** A page id no other run shares: Redis is shared, and each instance keeps only its page's scans. */
function pageIdOf(row: number): string {
  return String(200_000_000_000_000 + (process.pid % 1_000_000) * 100 + row);
}

/** The result of a PostgreSQL row that cannot run here (not an error), or undefined when it can. */
async function skipped(context: BenchContext, row: number, describe: { what: string; target: string }): Promise<RowResult | undefined> {
  const problem = await unreachable();
  if (problem === undefined) return undefined;
  context.log(`row ${row}: skipped: ${problem}`);
  return {
    row,
    what: describe.what,
    measured: `skipped: ${problem}`,
    floor: '—',
    target: describe.target,
    met: null,
    data: { skipped: problem },
  };
}

/**
 * A database of its own and two gateways on it (A first, which runs the migrations, then
 * B), both stopped and the database dropped afterwards.
 */
async function withPair<T>(context: BenchContext, row: number, work: (pair: Pair, url: string) => Promise<T>): Promise<T> {
  const pageId = pageIdOf(row);
  return withDatabase(`bench_${process.pid}_${row}`, async (url) => {
    const start = (label: string) =>
      GatewayProcess.start({
        databaseUrl: url,
        redisUrl: REDIS_URL,
        redisPrefix: `bench-${process.pid}-${row}:`,
        appSecret: context.appSecret,
        pageId,
        subscriberMaxBacklog: 100_000,
        ...(context.profileDirectory ? { profileDirectory: join(context.profileDirectory, `row${row}-${label}`) } : {}),
      });
    const a = await start('a');
    try {
      const b = await start('b');
      try {
        const result = await work({ a, b, pageId }, url);
        a.assertRunning();
        b.assertRunning();
        return result;
      } finally {
        await b.stop();
      }
    } finally {
      await a.stop();
    }
  });
}

/** `count` codes benchRef(0..count-1), generated on A (small images: only their rows matter here). */
async function generateWebhookCodes(gateway: GatewayProcess, count: number): Promise<void> {
  await graphql(
    gateway,
    `
      mutation ($input: GenerateCodesInput!) {
        generateCodes(input: $input) {
          id
        }
      }
    `,
    { input: { refs: Array.from({ length: count }, (_, k) => benchRef(k)), imageSize: 100 } },
  );
}

/**
 * A closed-loop round against both gateways at once, half the senders on each. Requests and
 * rates add up; the latency is the worse of the two halves (percentiles do not add).
 */
async function pairRound(
  context: BenchContext,
  pair: Pair,
  workload: Workload,
  concurrency: number,
  durationMs: number,
): Promise<MeasuredRound> {
  const half = Math.max(1, Math.floor(concurrency / 2));
  const [onA, onB] = await Promise.all([
    httpRound(context, pair.a, workload, half, durationMs),
    httpRound(context, pair.b, workload, concurrency - half, durationMs),
  ]);
  const combined: HttpRoundResult = {
    requests: onA.requests + onB.requests,
    failures: onA.failures + onB.failures,
    ...((onA.firstFailure ?? onB.firstFailure) === undefined ? {} : { firstFailure: onA.firstFailure ?? onB.firstFailure }),
    elapsedMs: Math.max(onA.elapsedMs, onB.elapsedMs),
    perSecond: onA.perSecond + onB.perSecond,
    latency: {
      count: onA.latency.count + onB.latency.count,
      p50: Math.max(onA.latency.p50, onB.latency.p50),
      p99: Math.max(onA.latency.p99, onB.latency.p99),
      max: Math.max(onA.latency.max, onB.latency.max),
    },
    // Both halves run in the one load process: each measured its CPU over the same time.
    loadCpu: Math.max(onA.loadCpu, onB.loadCpu),
  };
  return { ...combined, gatewayCpu: onA.gatewayCpu + onB.gatewayCpu };
}

function pairCpuNote(round: MeasuredRound): string {
  return `${cpuNote(round)} (gateway: both processes)`;
}

async function storedScans(url: string): Promise<number> {
  const [[count]] = await queryOnce<[string]>(url, 'SELECT COUNT(*) FROM scan');
  return Number(count);
}

// ---------------------------------------------------------------- row 18

interface InsertRound {
  rows: number;
  ms: number;
  perSecond: number;
}

/**
 * The floor of row 18: `rounds` of rows inserted by `concurrency` connections, each taking
 * the next batch of `batchSize` rows and inserting it with one multi-row INSERT in a
 * transaction of its own, into a fresh database with the gateway's schema (its migrations).
 */
async function rawInserts(
  url: string,
  columns: string[],
  rounds: unknown[][][],
  batchSize: number,
  concurrency: number,
): Promise<InsertRound[]> {
  const schema = await Database.open(createDataSource({ kind: 'postgres', url }));
  await schema.close();
  const clients = await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = new Client({ connectionString: url });
      await client.connect();
      return client;
    }),
  );
  try {
    const statement = (rows: number) =>
      `INSERT INTO scan (${columns.join(', ')}) VALUES ${Array.from(
        { length: rows },
        (_, row) => `(${columns.map((_column, column) => `$${row * columns.length + column + 1}`).join(', ')})`,
      ).join(', ')}`;
    const fullBatch = statement(batchSize);
    const results: InsertRound[] = [];
    for (const rows of rounds) {
      const batches: unknown[][][] = [];
      for (let first = 0; first < rows.length; first += batchSize) batches.push(rows.slice(first, first + batchSize));
      let next = 0;
      const started = performance.now();
      await Promise.all(
        clients.map(async (client) => {
          while (next < batches.length) {
            const batch = batches[next];
            next += 1;
            await client.query('BEGIN');
            await client.query(batch.length === batchSize ? fullBatch : statement(batch.length), batch.flat());
            await client.query('COMMIT');
          }
        }),
      );
      const took = performance.now() - started;
      results.push({ rows: rows.length, ms: took, perSecond: (rows.length / took) * 1000 });
    }
    return results;
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

export async function pgBatchedWebhooks(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const what = `PostgreSQL, 2 gateways: scans/s in batched webhooks of ${scale.batchSize} scans, ${scale.batchSenders} concurrent senders split over both, ${scale.webhookRefs} codes`;
  const target = '≥ 50 % of the floor, every acknowledged scan stored';
  const skip = await skipped(context, 18, { what, target });
  if (skip) return skip;
  const failures = new Failures();
  const { gatewayRounds, acknowledged, columns, storedRows, activity } = await withPair(context, 18, async (pair, url) => {
    await generateWebhookCodes(pair.a, scale.webhookRefs);
    const workload: Workload = {
      kind: 'batched-webhook',
      appSecret: context.appSecret,
      pageId: pair.pageId,
      refs: Array.from({ length: scale.webhookRefs }, (_, k) => benchRef(k)),
      batchSize: scale.batchSize,
    };
    const warmup = await pairRound(context, pair, workload, scale.batchSenders, scale.warmupMs);
    failures.add(warmup);
    let requests = warmup.requests;
    const rounds: MeasuredRound[] = [];
    const sampler = new ActivitySampler(url);
    await sampler.start();
    for (let round = 1; round <= scale.rounds; round += 1) {
      const result = await pairRound(context, pair, workload, scale.batchSenders, scale.roundMs);
      failures.add(result);
      requests += result.requests;
      rounds.push(result);
      context.log(
        `row 18 round ${round}: ${num(result.perSecond * scale.batchSize)} scans/s, p99 ${ms(result.latency.p99)} ${pairCpuNote(result)}`,
      );
    }
    const activity = await sampler.stop();
    context.log(`row 18: ${describeActivity(activity)}`);
    const stored = await queryOnceWithFields(url, 'SELECT * FROM scan ORDER BY stream_seq');
    return { gatewayRounds: rounds, acknowledged: requests, columns: stored.columns, storedRows: stored.rows, activity };
  });

  // The floor runs with both gateways stopped, in a database of its own, on the same server.
  const rowsPerRound = Math.max(1, Math.round(median(gatewayRounds.map((round) => round.requests)) * scale.batchSize));
  const floorRounds = await withDatabase(`bench_${process.pid}_18_floor`, (url) =>
    rawInserts(
      url,
      columns,
      Array.from({ length: scale.rounds }, (_, round) => storedRows.slice(round * rowsPerRound, (round + 1) * rowsPerRound)),
      scale.batchSize,
      scale.batchSenders,
    ),
  );
  floorRounds.forEach((round, index) =>
    context.log(
      `row 18 floor round ${index + 1}: ${num(round.perSecond)} rows/s (${num(round.rows, 0)} rows, ${scale.batchSize} per transaction)`,
    ),
  );
  const gateway = medianOf(gatewayRounds);
  const scansPerSecond = gateway.perSecond * scale.batchSize;
  const floor = median(floorRounds.map((round) => round.perSecond));
  const ratio = scansPerSecond / floor;
  const expected = acknowledged * scale.batchSize;
  const allStored = storedRows.length === expected;
  return {
    row: 18,
    what,
    measured: `${num(scansPerSecond)} scans/s (${num(gateway.perSecond)} webhooks/s, p99 ${ms(gateway.p99)}); ${num(expected, 0)} acknowledged, ${num(storedRows.length, 0)} stored`,
    floor: `the same rows, raw pg multi-row INSERTs, ${scale.batchSize} per transaction, ${scale.batchSenders} connections: ${num(floor)} rows/s; ratio ${percent(ratio)}`,
    target,
    met: ratio >= 0.5 && allStored,
    data: {
      scansPerSecond,
      webhooks: { ...gateway, rounds: gatewayRounds },
      floor: { rowsPerSecond: floor, rowsPerRound, rounds: floorRounds },
      ratio,
      acknowledgedScans: expected,
      stored: storedRows.length,
      activity,
    },
    notes: [`- row 18, while measured: ${describeActivity(activity)}`],
    ...(failures.error
      ? { error: failures.error }
      : allStored
        ? {}
        : { error: `${expected} scans acknowledged but ${storedRows.length} stored` }),
  };
}

// ---------------------------------------------------------------- row 19

export async function pgSingleScanWebhooks(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const what = `PostgreSQL, 2 gateways: signed single-scan webhook POSTs/s, ${scale.singleScanSenders} keep-alive senders split over both, over ${scale.webhookRefs} codes and all on one code`;
  const target = '≥ 50 % of the floor (both cases), every acknowledged scan stored';
  const skip = await skipped(context, 19, { what, target });
  if (skip) return skip;
  const floorServer = await HttpFloorServer.start(context.appSecret);
  try {
    return await withPair(context, 19, async (pair, url) => {
      await generateWebhookCodes(pair.a, scale.webhookRefs);
      const failures = new Failures();
      const floorTarget = {
        url: floorServer.url,
        cpuMeter: () => floorServer.cpuMeter(),
        assertRunning: () => floorServer.assertRunning(),
      };
      const cases = [
        { name: `${scale.webhookRefs} codes`, refs: Array.from({ length: scale.webhookRefs }, (_, k) => benchRef(k)) },
        { name: 'one code (billboard)', refs: [benchRef(0)] },
      ];
      let acknowledged = 0;
      const outcomes: {
        name: string;
        webhook: ReturnType<typeof medianOf> & { rounds: MeasuredRound[] };
        floor: ReturnType<typeof medianOf> & { rounds: MeasuredRound[] };
        ratio: number;
        activity: Activity;
      }[] = [];
      for (const { name, refs } of cases) {
        const workload: Workload = { kind: 'single-scan-webhook', appSecret: context.appSecret, pageId: pair.pageId, refs };
        failures.add(await httpRound(context, floorTarget, workload, scale.singleScanSenders, scale.warmupMs));
        const warmup = await pairRound(context, pair, workload, scale.singleScanSenders, scale.warmupMs);
        failures.add(warmup);
        acknowledged += warmup.requests;
        const floor: MeasuredRound[] = [];
        const webhook: MeasuredRound[] = [];
        const sampler = new ActivitySampler(url);
        sampler.paused = true;
        await sampler.start();
        // Interleaved, so that drift of the machine weighs on both alike.
        for (let round = 1; round <= scale.rounds; round += 1) {
          const bare = await httpRound(context, floorTarget, workload, scale.singleScanSenders, scale.roundMs);
          sampler.paused = false;
          const ours = await pairRound(context, pair, workload, scale.singleScanSenders, scale.roundMs);
          sampler.paused = true;
          failures.add(bare);
          failures.add(ours);
          acknowledged += ours.requests;
          floor.push(bare);
          webhook.push(ours);
          context.log(
            `row 19 ${name} round ${round}: node:http floor ${num(bare.perSecond)}/s ${cpuNote(bare)}, webhooks ${num(ours.perSecond)}/s p99 ${ms(ours.latency.p99)} ${pairCpuNote(ours)}`,
          );
        }
        const activity = await sampler.stop();
        context.log(`row 19 ${name}: ${describeActivity(activity)}`);
        const ours = medianOf(webhook);
        const bare = medianOf(floor);
        outcomes.push({
          name,
          webhook: { ...ours, rounds: webhook },
          floor: { ...bare, rounds: floor },
          ratio: ours.perSecond / bare.perSecond,
          activity,
        });
      }
      const stored = await storedScans(url);
      const allStored = stored === acknowledged;
      return {
        row: 19,
        what,
        measured: `${outcomes
          .map(
            (outcome) =>
              `${outcome.name}: ${num(outcome.webhook.perSecond)}/s (p99 ${ms(outcome.webhook.p99)}, ratio ${percent(outcome.ratio)})`,
          )
          .join('; ')}; ${num(acknowledged, 0)} acknowledged, ${num(stored, 0)} stored`,
        floor: `bare node:http checking the same HMAC: ${outcomes.map((outcome) => `${num(outcome.floor.perSecond)}/s`).join(', ')}`,
        target,
        met: outcomes.every((outcome) => outcome.ratio >= 0.5) && allStored,
        data: { cases: outcomes, acknowledged, stored },
        notes: outcomes.map((outcome) => `- row 19, ${outcome.name}, while measured: ${describeActivity(outcome.activity)}`),
        ...(failures.error
          ? { error: failures.error }
          : allStored
            ? {}
            : { error: `${acknowledged} scans acknowledged but ${stored} stored` }),
      };
    });
  } finally {
    floorServer.stop();
  }
}

// ---------------------------------------------------------------- row 20

export async function pgDeliveryAcrossInstances(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const what = `PostgreSQL, 2 gateways: delivery from B's 200 to receipt on A, ${num(scale.deliverySubscribers, 0)} subscribers on A on one code, ${scale.deliveryRate} scans/s for ${scale.deliveryRoundMs / 1000} s`;
  const target = 'p99 < 200 ms, none lost';
  const skip = await skipped(context, 20, { what, target });
  if (skip) return skip;
  return withPair(context, 20, async (pair) => {
    const ref = 'bench-live';
    await graphql(
      pair.a,
      `
        mutation ($input: GenerateCodeInput!) {
          generateCode(input: $input) {
            id
          }
        }
      `,
      { input: { data: { ref }, imageSize: 100 } },
    );
    const opened = await context.load.call('openSubscribers', { baseUrl: pair.a.url, count: scale.deliverySubscribers, ref });
    context.log(`row 20: ${num(opened.open, 0)} graphql-ws subscribers connected to A in ${ms(opened.ms)}`);
    try {
      const round = async (poster: GatewayProcess, durationMs: number) => {
        const cpuA = pair.a.cpuMeter();
        const cpuB = pair.b.cpuMeter();
        const result = await context.load.call('deliveryRound', {
          baseUrl: poster.url,
          appSecret: context.appSecret,
          pageId: pair.pageId,
          ref,
          rate: scale.deliveryRate,
          durationMs,
        });
        const { messages: _messages, ...stats } = result;
        return { ...stats, gatewayCpu: cpuA() + cpuB() };
      };
      const warmup = await round(pair.b, Math.max(1_000, scale.warmupMs));
      context.log(`row 20 warm-up (posted to B): p99 ${ms(warmup.latency.p99)}, lost ${warmup.lost} of ${warmup.expected}`);
      const across: (DeliveryStats & { gatewayCpu: number })[] = [];
      const same: (DeliveryStats & { gatewayCpu: number })[] = [];
      for (let index = 1; index <= scale.rounds; index += 1) {
        across.push(await round(pair.b, scale.deliveryRoundMs));
        same.push(await round(pair.a, scale.deliveryRoundMs));
        const [b, a] = [across[index - 1], same[index - 1]];
        context.log(
          `row 20 round ${index}: posted to B p50 ${ms(b.latency.p50)} p99 ${ms(b.latency.p99)} lost ${b.lost} of ${b.expected}; ` +
            `posted to A p50 ${ms(a.latency.p50)} p99 ${ms(a.latency.p99)} lost ${a.lost} of ${a.expected} (gateway CPU, both: ${num(b.gatewayCpu, 2)} / ${num(a.gatewayCpu, 2)} cores)`,
        );
      }
      const measured = deliverySummary(across);
      const floor = deliverySummary(same);
      return {
        row: 20,
        what,
        measured: `posted to B: ${describeDelivery(measured)}`,
        floor: `the same scans posted to A (no instance between): ${describeDelivery(floor)}`,
        target,
        met: measured.p99 < 200 && measured.lost === 0 && measured.clientFailures === 0,
        data: { across: { ...measured, rounds: across }, sameInstance: { ...floor, rounds: same } },
      };
    } finally {
      await context.load.call('closeSubscribers', {});
    }
  });
}
