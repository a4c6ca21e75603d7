/**
 * Rows 8 and 9: what API keys cost. Each row runs two gateways on copies of the same
 * data: one open (no key exists: every request is ADMIN, though each still asks whether
 * a key exists), one where a VIEWER key scoped to the page exists and every request and
 * every WebSocket presents it (key lookup by hash, the schema guard, queries narrowed to
 * the key's pages, the subscription filtered at the source). Both are warmed up, then
 * measured in alternating rounds under the same load: the ratio is the cost of the key
 * check and the scoping.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GatewayProcess } from './gateway-process';
import type { DeliveryStats, Workload } from './protocol';
import { ms, num, type RowResult } from './report';
import { median } from './stats';
import {
  cpuNote,
  databaseWithCodes,
  deliverySummary,
  describeDelivery,
  Failures,
  graphql,
  httpRound,
  inRowDirectory,
  medianOf,
  withGateway,
  type BenchContext,
  type MeasuredRound,
} from './rows';

const CREATE_VIEWER_KEY = `
  mutation ($pageId: ID!) {
    createApiKey(input: { name: "bench viewer", role: VIEWER, pageIds: [$pageId] }) { key }
  }
`;

/** Codes of the listing rows: a page of a restaurant's or an agency client's codes. */
const KEYS_LISTING_CODES = 1_000;
/**
 * The same rows on both sides: the page's codes, named by pageId. (Without it, the open
 * gateway counts the whole table, which SQLite does from the b-tree's size, while a scoped
 * key counts its pages' codes through the index: a different query, about 15 % slower here.)
 */
const KEYS_LISTING = `query ($pageId: ID!) { codes(pageId: $pageId, first: 20) { totalCount edges { node { id ref scanCount lastScannedAt } } } }`;

async function createViewerKey(context: BenchContext, gateway: GatewayProcess): Promise<string> {
  const created = await graphql<{ createApiKey: { key: string } }>(gateway, CREATE_VIEWER_KEY, { pageId: context.pageId });
  return `Bearer ${created.createApiKey.key}`;
}

// ---------------------------------------------------------------- row 8

/** Both gateways of a row: the open one, and the locked one with the key every request presents. */
async function withOpenAndKeyed<T>(
  context: BenchContext,
  label: string,
  paths: { open: string; keyed: string },
  work: (open: GatewayProcess, keyed: GatewayProcess, authorization: string) => Promise<T>,
  /** run on both while they are still open (the key locks the second) */
  prepare: (gateway: GatewayProcess) => Promise<unknown> = async () => undefined,
): Promise<T> {
  return withGateway(context, `${label}-open`, paths.open, (open) =>
    withGateway(context, `${label}-keyed`, paths.keyed, async (keyed) => {
      await prepare(open);
      await prepare(keyed);
      return work(open, keyed, await createViewerKey(context, keyed));
    }),
  );
}

export async function listingWithKeys(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const failures = new Failures();

  return inRowDirectory(context, 'row8', async (directory) => {
    const openPath = await databaseWithCodes(context, directory, KEYS_LISTING_CODES);
    const keyedPath = join(directory, 'keyed.sqlite');
    copyFileSync(openPath, keyedPath);
    const { open, keyed } = await withOpenAndKeyed(
      context,
      'row8',
      { open: openPath, keyed: keyedPath },
      async (openGateway, keyedGateway, authorization) => {
        const sides = [
          {
            label: 'no key',
            gateway: openGateway,
            workload: { kind: 'graphql', query: KEYS_LISTING, variables: { pageId: context.pageId } } as Workload,
            rounds: [] as MeasuredRound[],
          },
          {
            label: 'VIEWER key',
            gateway: keyedGateway,
            workload: { kind: 'graphql', query: KEYS_LISTING, variables: { pageId: context.pageId }, authorization } as Workload,
            rounds: [] as MeasuredRound[],
          },
        ];
        for (const side of sides) {
          const page = await graphql<{ codes: { totalCount: number } }>(
            side.gateway,
            KEYS_LISTING,
            { pageId: context.pageId },
            side === sides[1] ? authorization : undefined,
          );
          if (page.codes.totalCount !== KEYS_LISTING_CODES) {
            throw new Error(`row 8 ${side.label}: the listing counts ${page.codes.totalCount} codes, expected ${KEYS_LISTING_CODES}`);
          }
          failures.add(await httpRound(context, side.gateway, side.workload, scale.listingClients, scale.warmupMs));
        }
        for (let round = 1; round <= scale.rounds; round += 1) {
          for (const side of sides) {
            const result = await httpRound(context, side.gateway, side.workload, scale.listingClients, scale.roundMs);
            failures.add(result);
            side.rounds.push(result);
            context.log(
              `row 8 ${side.label} round ${round}: ${num(result.perSecond)} req/s, p99 ${ms(result.latency.p99)} ${cpuNote(result)}`,
            );
          }
        }
        return {
          open: { ...medianOf(sides[0].rounds), rounds: sides[0].rounds },
          keyed: { ...medianOf(sides[1].rounds), rounds: sides[1].rounds },
        };
      },
    );
    const ratio = keyed.perSecond / open.perSecond;
    return {
      row: 8,
      what: `codes(pageId, first: 20) with totalCount, ${scale.listingClients} clients, ${num(KEYS_LISTING_CODES, 0)} codes: a scoped VIEWER key against no key`,
      measured: `VIEWER key: ${num(keyed.perSecond)} req/s, p99 ${ms(keyed.p99)}; ratio ${num(ratio, 2)}`,
      floor: `no key (open gateway): ${num(open.perSecond)} req/s, p99 ${ms(open.p99)}`,
      target: 'ratio ≥ 0.9',
      met: ratio >= 0.9,
      data: { codes: KEYS_LISTING_CODES, keyed, open, ratio },
      ...(failures.error ? { error: failures.error } : {}),
    };
  });
}

// ---------------------------------------------------------------- row 9

type DeliveryRound = DeliveryStats & { gatewayCpu: number };

export async function deliveryWithKeys(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  const ref = 'bench-live';
  const subscribers = scale.deliverySubscribers;

  /** One round on one gateway: its subscribers connect, catch up, take `durationMs` of scans, and leave. */
  const round = async (gateway: GatewayProcess, durationMs: number, authorization: string | undefined): Promise<DeliveryRound> => {
    await context.load.call('openSubscribers', {
      baseUrl: gateway.url,
      count: subscribers,
      ref,
      ...(authorization ? { authorization } : {}),
    });
    const target = { baseUrl: gateway.url, appSecret: context.appSecret, pageId: context.pageId, ref };
    try {
      await context.load.call('syncSubscribers', target);
      const cpu = gateway.cpuMeter();
      const { messages: _messages, ...result } = await context.load.call('deliveryRound', {
        ...target,
        rate: scale.deliveryRate,
        durationMs,
      });
      const measured = { ...result, gatewayCpu: cpu() };
      gateway.assertRunning();
      return measured;
    } finally {
      await context.load.call('closeSubscribers', {});
    }
  };

  return inRowDirectory(context, 'row9', async (directory) => {
    const paths = { open: join(directory, 'open.sqlite'), keyed: join(directory, 'keyed.sqlite') };
    const generate = (gateway: GatewayProcess) =>
      graphql(
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
    const { open, keyed } = await withOpenAndKeyed(
      context,
      'row9',
      paths,
      async (openGateway, keyedGateway, authorization) => {
        const sides = [
          { label: 'no key', gateway: openGateway, authorization: undefined, rounds: [] as DeliveryRound[] },
          { label: 'VIEWER key', gateway: keyedGateway, authorization, rounds: [] as DeliveryRound[] },
        ];
        for (const side of sides) await round(side.gateway, Math.max(1_000, scale.warmupMs), side.authorization);
        for (let index = 1; index <= scale.rounds; index += 1) {
          for (const side of sides) {
            const result = await round(side.gateway, scale.deliveryRoundMs, side.authorization);
            side.rounds.push(result);
            context.log(
              `row 9 ${side.label} round ${index}: p50 ${ms(result.latency.p50)}, p99 ${ms(result.latency.p99)}, lost ${result.lost} of ${result.expected} ${cpuNote(result)}`,
            );
          }
        }
        const summary = (rounds: DeliveryRound[]) => ({
          ...deliverySummary(rounds),
          gatewayCpu: median(rounds.map((r) => r.gatewayCpu)),
          rounds,
        });
        return { open: summary(sides[0].rounds), keyed: summary(sides[1].rounds) };
      },
      generate,
    );
    // Same scans at the same rate to as many subscribers: the CPU the gateway spends is the cost.
    const ratio = open.gatewayCpu / keyed.gatewayCpu;
    const cpu = (summary: { gatewayCpu: number }) => `gateway CPU ${num(summary.gatewayCpu, 2)} cores`;
    return {
      row: 9,
      what: `delivery, ${num(subscribers, 0)} subscribers on one code, ${scale.deliveryRate} scans/s: every WebSocket with a scoped VIEWER key against no key`,
      measured: `VIEWER key: ${describeDelivery(keyed)}; ${cpu(keyed)}; ratio ${num(ratio, 2)}`,
      floor: `no key: ${describeDelivery(open)}; ${cpu(open)}`,
      target: 'CPU ratio (no key / key) ≥ 0.9, no message lost',
      met: ratio >= 0.9 && keyed.lost === 0 && keyed.clientFailures === 0,
      data: { subscribers, keyed, open, ratio },
    };
  });
}
