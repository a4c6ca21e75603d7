/**
 * Rows 1 to 7 of the benchmark (8 and 9, the cost of API keys, are in keys-rows.ts). Each starts its own gateway on a fresh SQLite file (state
 * of one row never leaks into another), measures the gateway and the row's floor in the
 * same run, and returns a RowResult. Timings are medians of `scale.rounds` rounds.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { attacks } from './attacks';
import { GatewayProcess } from './gateway-process';
import { HttpFloorServer } from './http-floor';
import type { LoadProcess } from './load-client';
import type { DeliveryStats, HttpRoundResult, Workload } from './protocol';
import { ms, num, percent, type RowResult } from './report';
import { benchRef, createSchema, seedCodes, seedScans } from './seed';
import { measureRawInserts, readStoredScans } from './sqlite-floor';
import { median } from './stats';

export interface Scale {
  rounds: number;
  roundMs: number;
  warmupMs: number;
  /** refs (seeded codes) the webhook rows spread their scans over */
  webhookRefs: number;
  singleScanSenders: number;
  batchSenders: number;
  batchSize: number;
  deliverySubscribers: number;
  deliveryRate: number;
  deliveryRoundMs: number;
  listingCodes: number;
  listingScansPerCode: number;
  listingClients: number;
  generateClients: number;
  memorySubscribers: number[];
  /** codes of the export row, 100 scans each */
  exportCodes: number;
  settleMs: number;
}

export const FULL: Scale = {
  rounds: 3,
  roundMs: 5_000,
  warmupMs: 2_000,
  webhookRefs: 50,
  singleScanSenders: 64,
  batchSenders: 16,
  batchSize: 100,
  deliverySubscribers: 1_000,
  deliveryRate: 20,
  deliveryRoundMs: 10_000,
  listingCodes: 100_000,
  listingScansPerCode: 100,
  listingClients: 32,
  generateClients: 4,
  memorySubscribers: [1_000, 10_000],
  exportCodes: 10_000,
  settleMs: 2_000,
};

export const QUICK: Scale = {
  ...FULL,
  // One round of each: CI runs --quick to prove the rows still work, not to measure them.
  rounds: 1,
  roundMs: 1_000,
  warmupMs: 300,
  deliverySubscribers: 200,
  deliveryRoundMs: 1_000,
  listingCodes: 1_000,
  memorySubscribers: [100, 1_000],
  exportCodes: 100,
  settleMs: 1_000,
};

export interface BenchContext {
  scale: Scale;
  load: LoadProcess;
  /** a fresh temporary directory; each row works in a directory of its own inside it */
  workDir: string;
  appSecret: string;
  pageId: string;
  log: (message: string) => void;
  /** when set, every gateway writes a CPU profile into <profileDirectory>/<label>/ when it stops */
  profileDirectory?: string;
}

const sleep = (milliseconds: number) => new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

/** A fresh directory for one row, removed afterwards (the listing row's file is several GB). */
export async function inRowDirectory<T>(context: BenchContext, name: string, work: (directory: string) => Promise<T>): Promise<T> {
  const directory = join(context.workDir, name);
  mkdirSync(directory, { recursive: true });
  try {
    return await work(directory);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Runs `work` against a gateway started on `databasePath`, stopped afterwards. `label` names its profile directory. */
export async function withGateway<T>(
  context: BenchContext,
  label: string,
  databasePath: string,
  work: (gateway: GatewayProcess) => Promise<T>,
): Promise<T> {
  const gateway = await GatewayProcess.start({
    databasePath,
    appSecret: context.appSecret,
    pageId: context.pageId,
    // Far above what a live subscriber of the delivery row ever has queued: only a dead one is cut off.
    subscriberMaxBacklog: 100_000,
    ...(context.profileDirectory ? { profileDirectory: join(context.profileDirectory, label) } : {}),
  });
  try {
    const result = await work(gateway);
    gateway.assertRunning();
    return result;
  } finally {
    await gateway.stop();
  }
}

export async function graphql<T>(
  gateway: GatewayProcess,
  query: string,
  variables: Record<string, unknown> = {},
  authorization?: string,
): Promise<T> {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown[] };
  if (!response.ok || body.errors || !body.data)
    throw new Error(`GraphQL failed (${response.status}): ${JSON.stringify(body).slice(0, 500)}`);
  return body.data;
}

/** Accumulates failed requests of a row: the row is still reported, and the run exits 1. */
export class Failures {
  count = 0;
  first: string | undefined;

  add(round: HttpRoundResult): void {
    if (round.failures === 0) return;
    this.count += round.failures;
    this.first ??= round.firstFailure;
  }

  get error(): string | undefined {
    return this.count === 0 ? undefined : `${num(this.count, 0)} requests failed; first: ${this.first ?? '?'}`;
  }
}

/** A round with the CPU the gateway used during it, in cores: where the time goes, at a glance. */
export type MeasuredRound = HttpRoundResult & { gatewayCpu: number };

/** What a round needs of the server it loads: the gateway, or a floor server. */
type LoadTarget = Pick<GatewayProcess, 'url' | 'cpuMeter' | 'assertRunning'>;

export async function httpRound(
  context: BenchContext,
  gateway: LoadTarget,
  workload: Workload,
  concurrency: number,
  durationMs: number,
): Promise<MeasuredRound> {
  const cpu = gateway.cpuMeter();
  const result = await context.load.call('http', { baseUrl: gateway.url, workload, concurrency, durationMs });
  const gatewayCpu = cpu();
  gateway.assertRunning();
  return { ...result, gatewayCpu };
}

export function cpuNote(round: { gatewayCpu: number; loadCpu: number }): string {
  return `(CPU: gateway ${num(round.gatewayCpu, 2)}, load ${num(round.loadCpu, 2)} cores)`;
}

export function medianOf(rounds: MeasuredRound[]): { perSecond: number; p50: number; p99: number; gatewayCpu: number; loadCpu: number } {
  return {
    perSecond: median(rounds.map((round) => round.perSecond)),
    p50: median(rounds.map((round) => round.latency.p50)),
    p99: median(rounds.map((round) => round.latency.p99)),
    gatewayCpu: median(rounds.map((round) => round.gatewayCpu)),
    loadCpu: median(rounds.map((round) => round.loadCpu)),
  };
}

function webhookRefs(scale: Scale): string[] {
  return Array.from({ length: scale.webhookRefs }, (_, k) => benchRef(k));
}

/** A fresh database with the webhook rows' codes already generated (raw SQL, as generateCode would leave them). */
export async function databaseWithCodes(context: BenchContext, directory: string, codes: number): Promise<string> {
  const path = join(directory, 'bench.sqlite');
  await createSchema(path);
  seedCodes(path, { pageId: context.pageId, count: codes });
  return path;
}

// ---------------------------------------------------------------- row 1

export async function singleScanWebhooks(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  return inRowDirectory(context, 'row1', async (directory) => {
    const path = await databaseWithCodes(context, directory, scale.webhookRefs);
    const floorServer = await HttpFloorServer.start(context.appSecret);
    try {
      const workload: Workload = {
        kind: 'single-scan-webhook',
        appSecret: context.appSecret,
        pageId: context.pageId,
        refs: webhookRefs(scale),
      };
      const failures = new Failures();
      let acknowledged = 0;
      const measured = await withGateway(context, 'row1', path, async (gateway) => {
        const floorAsGateway = {
          url: floorServer.url,
          cpuMeter: () => floorServer.cpuMeter(),
          assertRunning: () => floorServer.assertRunning(),
        };
        failures.add(await httpRound(context, floorAsGateway, workload, scale.singleScanSenders, scale.warmupMs));
        const warmup = await httpRound(context, gateway, workload, scale.singleScanSenders, scale.warmupMs);
        failures.add(warmup);
        acknowledged += warmup.requests;
        const floor: MeasuredRound[] = [];
        const webhook: MeasuredRound[] = [];
        // Interleaved, so that drift of the machine weighs on both alike.
        for (let round = 1; round <= scale.rounds; round += 1) {
          floor.push(await httpRound(context, floorAsGateway, workload, scale.singleScanSenders, scale.roundMs));
          webhook.push(await httpRound(context, gateway, workload, scale.singleScanSenders, scale.roundMs));
          failures.add(floor[floor.length - 1]);
          failures.add(webhook[webhook.length - 1]);
          acknowledged += webhook[webhook.length - 1].requests;
          context.log(
            `row 1 round ${round}: node:http floor ${num(floor[round - 1].perSecond)}/s ${cpuNote(floor[round - 1])}, webhook ${num(webhook[round - 1].perSecond)}/s ${cpuNote(webhook[round - 1])}`,
          );
        }
        return { floor, webhook };
      });
      // Every 200 carried one distinct scan: each must be in the database, once.
      const stored = readStoredScans(path).rows.length;
      const floor = medianOf(measured.floor);
      const webhook = medianOf(measured.webhook);
      const ratio = webhook.perSecond / floor.perSecond;
      const allCounted = stored === acknowledged;
      return {
        row: 1,
        what: `signed single-scan webhook POSTs/s, ${scale.singleScanSenders} concurrent senders, each answered after commit`,
        measured: `${num(webhook.perSecond)}/s (p99 ${ms(webhook.p99)}); ${num(acknowledged, 0)} acknowledged, ${num(stored, 0)} stored`,
        floor: `bare node:http checking the same HMAC: ${num(floor.perSecond)}/s (p99 ${ms(floor.p99)}); ratio ${percent(ratio)}`,
        target: '≥ 50 % of the floor, every acknowledged scan stored',
        met: ratio >= 0.5 && allCounted,
        data: {
          webhook: { ...webhook, rounds: measured.webhook },
          floor: { ...floor, rounds: measured.floor },
          ratio,
          acknowledged,
          stored,
        },
        ...(failures.error
          ? { error: failures.error }
          : allCounted
            ? {}
            : { error: `${acknowledged} scans acknowledged but ${stored} stored` }),
      };
    } finally {
      floorServer.stop();
    }
  });
}

// ---------------------------------------------------------------- row 2

export async function batchedWebhooks(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  return inRowDirectory(context, 'row2', async (directory) => {
    const path = await databaseWithCodes(context, directory, scale.webhookRefs);
    const workload: Workload = {
      kind: 'batched-webhook',
      appSecret: context.appSecret,
      pageId: context.pageId,
      refs: webhookRefs(scale),
      batchSize: scale.batchSize,
    };
    const failures = new Failures();
    const rounds = await withGateway(context, 'row2', path, async (gateway) => {
      failures.add(await httpRound(context, gateway, workload, scale.batchSenders, scale.warmupMs));
      const results: MeasuredRound[] = [];
      for (let round = 1; round <= scale.rounds; round += 1) {
        results.push(await httpRound(context, gateway, workload, scale.batchSenders, scale.roundMs));
        failures.add(results[results.length - 1]);
        context.log(`row 2 round ${round}: ${num(results[round - 1].perSecond * scale.batchSize)} scans/s ${cpuNote(results[round - 1])}`);
      }
      return results;
    });
    const measured = medianOf(rounds);
    const scansPerSecond = measured.perSecond * scale.batchSize;

    // The floor inserts the rows the gateway stored, as many per round as it stored in its median round.
    const stored = readStoredScans(path);
    const rowsPerRound = Math.max(1, Math.round(median(rounds.map((round) => round.requests)) * scale.batchSize));
    const floorRounds = await measureRawInserts(
      join(directory, 'floor.sqlite'),
      stored.columns,
      Array.from({ length: scale.rounds }, (_, round) => stored.rows.slice(round * rowsPerRound, (round + 1) * rowsPerRound)),
    );
    floorRounds.forEach((round, index) =>
      context.log(`row 2 floor round ${index + 1}: ${num(round.perSecond)} rows/s (${num(round.rows)} rows in one transaction)`),
    );
    const floor = median(floorRounds.map((round) => round.perSecond));
    return {
      row: 2,
      what: `scans/s in batched webhooks of ${scale.batchSize} scans, ${scale.batchSenders} concurrent senders, ${scale.webhookRefs} refs`,
      measured: `${num(scansPerSecond)} scans/s (${num(measured.perSecond)} webhooks/s, p99 ${ms(measured.p99)})`,
      floor: `the same rows, raw better-sqlite3, one transaction per round: ${num(floor)} rows/s; ratio ${percent(scansPerSecond / floor)}`,
      target: '≥ 50,000 scans/s',
      met: scansPerSecond >= 50_000,
      data: {
        scansPerSecond,
        webhooks: { ...measured, rounds },
        floor: { rowsPerSecond: floor, storedRows: stored.rows.length, rowsPerRound, rounds: floorRounds },
      },
      ...(failures.error ? { error: failures.error } : {}),
    };
  });
}

// ---------------------------------------------------------------- row 3

export function deliverySummary(rounds: DeliveryStats[]): {
  p50: number;
  p99: number;
  max: number;
  lost: number;
  expected: number;
  unexpected: number;
  clientFailures: number;
  achievedRate: number;
} {
  return {
    p50: median(rounds.map((round) => round.latency.p50)),
    p99: median(rounds.map((round) => round.latency.p99)),
    max: Math.max(...rounds.map((round) => round.latency.max)),
    lost: rounds.reduce((sum, round) => sum + round.lost, 0),
    expected: rounds.reduce((sum, round) => sum + round.expected, 0),
    unexpected: rounds.reduce((sum, round) => sum + round.unexpected, 0),
    clientFailures: rounds.reduce((sum, round) => sum + round.clientFailures, 0),
    achievedRate: median(rounds.map((round) => round.achievedRate)),
  };
}

export function describeDelivery(summary: ReturnType<typeof deliverySummary>): string {
  const extras = [
    summary.unexpected > 0 ? `${num(summary.unexpected, 0)} unexpected` : '',
    summary.clientFailures > 0 ? `${num(summary.clientFailures, 0)} clients failed` : '',
  ].filter((text) => text !== '');
  return `p50 ${ms(summary.p50)} / p99 ${ms(summary.p99)} / max ${ms(summary.max)}; lost ${num(summary.lost, 0)} of ${num(summary.expected, 0)}${extras.length ? `; ${extras.join(', ')}` : ''}`;
}

export async function deliveryLatency(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const ref = 'bench-live';
  const gatewayRounds = await inRowDirectory(context, 'row3', (directory) =>
    withGateway(context, 'row3', join(directory, 'bench.sqlite'), async (gateway) => {
      await graphql(
        gateway,
        `
          mutation ($input: GenerateCodeInput!) {
            generateCode(input: $input) {
              id
            }
          }
        `,
        {
          input: { data: { ref }, imageSize: 1000 },
        },
      );
      const opened = await context.load.call('openSubscribers', { baseUrl: gateway.url, count: scale.deliverySubscribers, ref });
      context.log(`row 3: ${num(opened.open, 0)} graphql-ws subscribers connected in ${ms(opened.ms)}`);
      const target = { baseUrl: gateway.url, appSecret: context.appSecret, pageId: context.pageId, ref };
      const synced = await context.load.call('syncSubscribers', target);
      context.log(`row 3: every subscription live after ${ms(synced.ms)}`);
      try {
        const warmup = await context.load.call('deliveryRound', {
          ...target,
          rate: scale.deliveryRate,
          durationMs: Math.max(1_000, scale.warmupMs),
        });
        context.log(`row 3 warm-up: p99 ${ms(warmup.latency.p99)}, lost ${warmup.lost} of ${warmup.expected}`);
        const rounds = [];
        for (let round = 1; round <= scale.rounds; round += 1) {
          const cpu = gateway.cpuMeter();
          const result = await context.load.call('deliveryRound', {
            ...target,
            rate: scale.deliveryRate,
            durationMs: scale.deliveryRoundMs,
          });
          const measured = { ...result, gatewayCpu: cpu() };
          gateway.assertRunning();
          context.log(
            `row 3 round ${round}: p50 ${ms(result.latency.p50)}, p99 ${ms(result.latency.p99)}, lost ${result.lost} of ${result.expected} ${cpuNote(measured)}`,
          );
          rounds.push(measured);
        }
        return rounds;
      } finally {
        await context.load.call('closeSubscribers', {});
      }
    }),
  );

  // The floor: the same strings, at the same rate, to as many bare ws clients, with the gateway stopped.
  const opened = await context.load.call('openFloor', { subscribers: scale.deliverySubscribers });
  context.log(`row 3 floor: ${num(opened.open, 0)} bare ws clients connected in ${ms(opened.ms)}`);
  const floorRounds: DeliveryStats[] = [];
  try {
    for (const [index, round] of gatewayRounds.entries()) {
      const result = await context.load.call('floorRound', { messages: round.messages, rate: scale.deliveryRate });
      context.log(
        `row 3 floor round ${index + 1}: p50 ${ms(result.latency.p50)}, p99 ${ms(result.latency.p99)}, lost ${result.lost} of ${result.expected} (CPU: load ${num(result.loadCpu, 2)} cores)`,
      );
      floorRounds.push(result);
    }
  } finally {
    await context.load.call('closeFloor', {});
  }

  const measured = deliverySummary(gatewayRounds);
  const floor = deliverySummary(floorRounds);
  const deliveriesPerSecond = scale.deliverySubscribers * scale.deliveryRate;
  return {
    row: 3,
    what: `delivery latency, ${num(scale.deliverySubscribers, 0)} subscribers on one code, ${scale.deliveryRate} scans/s for ${scale.deliveryRoundMs / 1000} s (${num(deliveriesPerSecond, 0)} deliveries/s)`,
    measured: describeDelivery(measured),
    floor: `bare ws broadcast: ${describeDelivery(floor)}`,
    target: 'p99 < 200 ms, no message lost',
    met: measured.p99 < 200 && measured.lost === 0 && measured.clientFailures === 0,
    data: {
      gateway: { ...measured, rounds: gatewayRounds.map(({ messages: _messages, ...stats }) => stats) },
      floor: { ...floor, rounds: floorRounds },
      messageBytes: gatewayRounds[0]?.messages[0]?.length,
    },
  };
}

// ---------------------------------------------------------------- row 4

const LISTING = `{ codes(first: 50, orderBy: SCAN_COUNT_DESC) { edges { node { id ref scanCount } } } }`;

interface ListingPage {
  codes: { edges: { node: { id: string; ref: string; scanCount: number } }[] };
}

export async function listingAtScale(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const workload: Workload = { kind: 'graphql', query: LISTING };
  const failures = new Failures();

  const measureListing = async (gateway: GatewayProcess, label: string, expectedTop: number) => {
    const page = await graphql<ListingPage>(gateway, LISTING);
    const top = page.codes.edges[0]?.node.scanCount;
    if (page.codes.edges.length !== Math.min(50, scale.listingCodes) || top !== expectedTop) {
      throw new Error(
        `the listing does not show the seeded data: ${page.codes.edges.length} edges, top scanCount ${top}, expected ${expectedTop}`,
      );
    }
    failures.add(await httpRound(context, gateway, workload, scale.listingClients, scale.warmupMs));
    const rounds: MeasuredRound[] = [];
    for (let round = 1; round <= scale.rounds; round += 1) {
      rounds.push(await httpRound(context, gateway, workload, scale.listingClients, scale.roundMs));
      failures.add(rounds[rounds.length - 1]);
      context.log(
        `row 4 ${label} round ${round}: ${num(rounds[round - 1].perSecond)} req/s, p99 ${ms(rounds[round - 1].latency.p99)} ${cpuNote(rounds[round - 1])}`,
      );
    }
    return { ...medianOf(rounds), rounds };
  };

  return inRowDirectory(context, 'row4', async (directory) => {
    const path = join(directory, 'bench.sqlite');
    await createSchema(path);
    const codes = seedCodes(path, { pageId: context.pageId, count: scale.listingCodes });
    context.log(`row 4: seeded ${num(codes.codes, 0)} codes in ${ms(codes.ms)}`);
    const empty = await withGateway(context, 'row4-no-scans', path, (gateway) => measureListing(gateway, 'no scans', 0));

    const started = performance.now();
    let reported = 0;
    const scans = seedScans(path, {
      pageId: context.pageId,
      codes: scale.listingCodes,
      averagePerCode: scale.listingScansPerCode,
      progress: (written) => {
        if (written - reported < 2_000_000) return;
        reported = written;
        context.log(`row 4: ${num(written, 0)} scans seeded (${num((performance.now() - started) / 1000, 1)} s)`);
      },
    });
    context.log(`row 4: seeded ${num(scans.scans, 0)} scans in ${num(scans.ms / 1000, 1)} s`);
    const full = await withGateway(context, 'row4-scans', path, (gateway) =>
      measureListing(gateway, `${num(scans.scans, 0)} scans`, 2 * scale.listingScansPerCode - 1),
    );

    const ratio = full.perSecond / empty.perSecond;
    return {
      row: 4,
      what: `codes(first: 50, orderBy: SCAN_COUNT_DESC) with scanCount, ${scale.listingClients} clients, ${num(scale.listingCodes, 0)} codes`,
      measured: `${num(scans.scans, 0)} scans: ${num(full.perSecond)} req/s, p99 ${ms(full.p99)}; ratio ${num(ratio, 2)}`,
      floor: `0 scans: ${num(empty.perSecond)} req/s, p99 ${ms(empty.p99)}`,
      target: 'ratio ≥ 0.9, p99 < 50 ms',
      met: ratio >= 0.9 && full.p99 < 50,
      data: {
        codes: scale.listingCodes,
        scans: scans.scans,
        seedCodesMs: codes.ms,
        seedScansMs: scans.ms,
        withScans: full,
        withoutScans: empty,
        ratio,
      },
      notes: [
        `row 4 seeding: ${num(codes.codes, 0)} codes in ${num(codes.ms / 1000, 1)} s, ${num(scans.scans, 0)} scans in ${num(scans.ms / 1000, 1)} s (raw SQL)`,
      ],
      ...(failures.error ? { error: failures.error } : {}),
    };
  });
}

// ---------------------------------------------------------------- row 5

export async function generateCodes(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const failures = new Failures();
  const rounds = await inRowDirectory(context, 'row5', (directory) =>
    withGateway(context, 'row5', join(directory, 'bench.sqlite'), async (gateway) => {
      const workload = (refPrefix: string): Workload => ({ kind: 'generate-code', imageSize: 1000, refPrefix });
      failures.add(await httpRound(context, gateway, workload('warmup'), scale.generateClients, scale.warmupMs));
      const results: MeasuredRound[] = [];
      for (let round = 1; round <= scale.rounds; round += 1) {
        results.push(await httpRound(context, gateway, workload(`round${round}`), scale.generateClients, scale.roundMs));
        failures.add(results[results.length - 1]);
        context.log(`row 5 round ${round}: ${num(results[round - 1].perSecond)} codes/s ${cpuNote(results[round - 1])}`);
      }
      return results;
    }),
  );
  const measured = medianOf(rounds);
  return {
    row: 5,
    what: `generateCode LOCAL, imageSize 1000, distinct refs, ${scale.generateClients} concurrent clients (scannability check included)`,
    measured: `${num(measured.perSecond)} codes/s (p50 ${ms(measured.p50)}, p99 ${ms(measured.p99)})`,
    floor: '—',
    target: '≥ 50 codes/s',
    met: measured.perSecond >= 50,
    data: { ...measured, rounds },
    ...(failures.error ? { error: failures.error } : {}),
  };
}

// ---------------------------------------------------------------- row 6

export async function memoryPerSubscriber(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  return inRowDirectory(context, 'row6', async (directory) => {
    const path = await databaseWithCodes(context, directory, 1);
    const ref = benchRef(0);
    return withGateway(context, 'row6', path, async (gateway) => {
      const target = { baseUrl: gateway.url, appSecret: context.appSecret, pageId: context.pageId, ref };
      const settledRss = async () => {
        await sleep(scale.settleMs);
        gateway.assertRunning();
        return gateway.rssKiB();
      };
      try {
        // Idle: started, one query and one webhook served (modules loaded, JIT warm), then left alone.
        await graphql(
          gateway,
          `
            {
              codes(first: 1) {
                edges {
                  node {
                    id
                    scanCount
                  }
                }
              }
            }
          `,
        );
        const warm = await context.load.call('http', {
          baseUrl: gateway.url,
          workload: { kind: 'single-scan-webhook', appSecret: context.appSecret, pageId: context.pageId, refs: [ref] },
          concurrency: 1,
          durationMs: 200,
        });
        if (warm.failures > 0) throw new Error(`webhooks failed: ${warm.firstFailure ?? '?'}`);
        const idleKiB = await settledRss();
        context.log(`row 6: idle RSS ${num(idleKiB / 1024, 1)} MB`);
        const points: { subscribers: number; rssKiB: number; perSubscriberKiB: number }[] = [];
        for (const count of scale.memorySubscribers) {
          const opened = await context.load.call('openSubscribers', {
            baseUrl: gateway.url,
            count: count - (points.at(-1)?.subscribers ?? 0),
            ref,
          });
          await context.load.call('syncSubscribers', target);
          const rssKiB = await settledRss();
          const perSubscriberKiB = (rssKiB - idleKiB) / opened.open;
          context.log(`row 6: ${num(opened.open, 0)} subscribers: RSS ${num(rssKiB / 1024, 1)} MB, ${num(perSubscriberKiB, 1)} KB each`);
          points.push({ subscribers: opened.open, rssKiB, perSubscriberKiB });
        }
        // Judged at the largest count: at small counts a step of heap growth weighs on few subscribers.
        const largest = points[points.length - 1];
        return {
          row: 6,
          what: 'gateway RSS idle and with idle graphql-ws subscribers (one WebSocket each)',
          measured: [
            `idle ${num(idleKiB / 1024, 1)} MB`,
            ...points.map(
              (point) =>
                `${num(point.subscribers, 0)}: ${num(point.rssKiB / 1024, 1)} MB (${num(point.perSubscriberKiB, 1)} KB/subscriber)`,
            ),
          ].join('; '),
          floor: '—',
          target: `≤ 50 KB per subscriber (at ${num(largest.subscribers, 0)})`,
          met: largest.perSubscriberKiB <= 50,
          data: { idleKiB, points },
        };
      } finally {
        await context.load.call('closeSubscribers', {});
      }
    });
  });
}

// ---------------------------------------------------------------- row 7

/** An attack that never ends is reported as such instead of stalling the benchmark. */
const ATTACK_DEADLINE_MS = 60_000;

export async function healthUnderAttack(context: BenchContext): Promise<RowResult> {
  return inRowDirectory(context, 'row7', async (directory) => {
    const path = await databaseWithCodes(context, directory, 1);
    return withGateway(context, 'row7', path, async (gateway) => {
      // A code with 100 scans, for the nested-lists attack.
      const ref = benchRef(0);
      const { codes } = await graphql<{ codes: { edges: { node: { id: string } }[] } }>(
        gateway,
        `
          query ($ref: String) {
            codes(ref: $ref, first: 1) {
              edges {
                node {
                  id
                }
              }
            }
          }
        `,
        { ref },
      );
      const codeId = codes.edges[0].node.id;
      const warm = await context.load.call('http', {
        baseUrl: gateway.url,
        workload: { kind: 'batched-webhook', appSecret: context.appSecret, pageId: context.pageId, refs: [ref], batchSize: 100 },
        concurrency: 1,
        durationMs: 200,
      });
      if (warm.failures > 0) throw new Error(`webhooks failed: ${warm.firstFailure ?? '?'}`);

      const idle = await context.load.call('healthProbe', { baseUrl: gateway.url, durationMs: 2000, intervalMs: 10 });
      context.log(`row 7 idle: /healthz p99 ${ms(idle.latency.p99)}, worst ${ms(idle.latency.max)}`);
      const results: { name: string; what: string; outcome: string; worstMs: number; p99Ms: number; failures: number }[] = [];
      for (const attack of attacks({ codeId, appSecret: context.appSecret, pageId: context.pageId })) {
        const probe = context.load.call('healthProbe', { baseUrl: gateway.url, durationMs: attack.probeMs, intervalMs: 10 });
        const outcome = await Promise.race([
          attack.run(gateway.url).catch((error: unknown) => `client error: ${error instanceof Error ? error.message : String(error)}`),
          sleep(ATTACK_DEADLINE_MS).then(() => `no answer within ${ATTACK_DEADLINE_MS / 1000} s`),
        ]);
        const health = await probe;
        gateway.assertRunning();
        results.push({
          name: attack.name,
          what: attack.what,
          outcome,
          worstMs: health.latency.max,
          p99Ms: health.latency.p99,
          failures: health.failures,
        });
        context.log(
          `row 7 ${attack.name}: ${outcome}; /healthz worst ${ms(health.latency.max)} (p99 ${ms(health.latency.p99)}, ${health.failures} failed)`,
        );
      }
      const worst = Math.max(...results.map((result) => result.worstMs));
      const failures = results.reduce((sum, result) => sum + result.failures, 0);
      return {
        row: 7,
        what: `worst GET /healthz latency while the gateway refuses each attack of the hardening issue (${results.length - 1} attacks)`,
        measured: `worst ${ms(worst)} over all attacks; ${failures} /healthz failures`,
        floor: `idle: worst ${ms(idle.latency.max)}, p99 ${ms(idle.latency.p99)}`,
        target: 'every attack refused, /healthz always answering (worst < 1 s)',
        met: worst < 1000 && failures === 0,
        data: { idle, attacks: results },
        notes: results.map(
          (result) =>
            `- row 7, ${result.name} (${result.what}): ${result.outcome}; /healthz worst ${ms(result.worstMs)}, p99 ${ms(result.p99Ms)}`,
        ),
      };
    });
  });
}
