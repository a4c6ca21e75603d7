/**
 * What the orchestrator (run.ts) asks of the load generator (load.ts) over the IPC
 * channel of `fork`, and what it answers. One request at a time per id; every answer
 * carries the id of its request.
 */
import type { LatencySummary } from './stats';

/** The requests a closed-loop HTTP round sends, built inside the load process. */
export type Workload =
  /** one signed scan per request to /webhook (of the gateway or of the bare node:http floor), each a distinct event */
  | { kind: 'single-scan-webhook'; appSecret: string; pageId: string; refs: string[] }
  /** `batchSize` signed scans per request, distinct events spread over `refs` */
  | { kind: 'batched-webhook'; appSecret: string; pageId: string; refs: string[]; batchSize: number }
  /** the same GraphQL operation every time, with `authorization` as its Authorization header when given */
  | { kind: 'graphql'; query: string; variables?: Record<string, unknown>; authorization?: string }
  /** generateCode with a new ref each time */
  | { kind: 'generate-code'; imageSize: number; refPrefix: string }
  /** GET of a REDIRECT link, answered 302 */
  | { kind: 'redirect'; path: string };

export interface HttpRoundParams {
  baseUrl: string;
  workload: Workload;
  concurrency: number;
  durationMs: number;
}

export interface HttpRoundResult {
  /** requests answered as expected */
  requests: number;
  failures: number;
  firstFailure?: string;
  elapsedMs: number;
  /** requests / s over the round */
  perSecond: number;
  /** request latency in ms */
  latency: LatencySummary;
  /** CPU the load generator itself used during the round, in cores (1 = one core busy) */
  loadCpu: number;
}

/** Opens graphql-ws subscribers `scanned(ref:)`, added to the load process's pool. */
export interface OpenSubscribersParams {
  baseUrl: string;
  count: number;
  ref: string;
  /** sent in connection_init as `{ authorization }` when given */
  authorization?: string;
}

export interface OpenSubscribersResult {
  open: number;
  ms: number;
}

/** Where the load process posts scans from (warm-ups, syncs and measured scans). */
export interface ScanTarget {
  baseUrl: string;
  appSecret: string;
  pageId: string;
  ref: string;
}

/**
 * Posts scans of the pool's ref until every subscriber has received the latest one:
 * every subscription is live and nothing is in flight. Answers the code's scan count.
 */
export interface SyncSubscribersResult {
  subscribers: number;
  scanCount: number;
  ms: number;
}

export interface DeliveryRoundParams extends ScanTarget {
  /** scans per second, posted one after the other on a fixed schedule */
  rate: number;
  durationMs: number;
}

export interface DeliveryStats {
  /** messages sent (scans posted, or strings broadcast) */
  sent: number;
  subscribers: number;
  expected: number;
  received: number;
  lost: number;
  /** messages that arrived out of the expected set (duplicates, unknown) */
  unexpected: number;
  /** ms, per delivery */
  latency: LatencySummary;
  /** the rate actually achieved, messages per second */
  achievedRate: number;
  /** subscribers whose connection failed or closed during the round */
  clientFailures: number;
  /** CPU the load generator (clients and poster) used during the round, in cores */
  loadCpu: number;
}

export interface DeliveryRoundResult extends DeliveryStats {
  /** the `next` messages one subscriber received, as graphql-ws framed them: the floor replays them */
  messages: string[];
}

export interface FloorOpenParams {
  subscribers: number;
}

export interface FloorRoundParams {
  messages: string[];
  rate: number;
}

/** GETs /healthz one after the other for `durationMs`, each at most `intervalMs` after the last began. */
export interface HealthProbeParams {
  baseUrl: string;
  durationMs: number;
  intervalMs: number;
}

export interface HealthProbeResult {
  samples: number;
  /** ms, per GET /healthz; a GET that failed counts as its time to failure */
  latency: LatencySummary;
  failures: number;
}

export interface LoadOps {
  healthProbe: { params: HealthProbeParams; result: HealthProbeResult };
  http: { params: HttpRoundParams; result: HttpRoundResult };
  openSubscribers: { params: OpenSubscribersParams; result: OpenSubscribersResult };
  syncSubscribers: { params: ScanTarget; result: SyncSubscribersResult };
  deliveryRound: { params: DeliveryRoundParams; result: DeliveryRoundResult };
  closeSubscribers: { params: Record<string, never>; result: { closed: number } };
  /** starts the bare `ws` broadcast server (its own process) and connects `subscribers` clients to it */
  openFloor: { params: FloorOpenParams; result: OpenSubscribersResult };
  floorRound: { params: FloorRoundParams; result: DeliveryStats };
  closeFloor: { params: Record<string, never>; result: { closed: number } };
}

export type LoadOp = keyof LoadOps;

export type LoadRequest = { [K in LoadOp]: { id: number; op: K; params: LoadOps[K]['params'] } }[LoadOp];

export type LoadResponse = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** Messages between the load process and the bare `ws` broadcast server it forks. */
export type FloorServerRequest = { op: 'broadcast'; messages: string[]; intervalMs: number };

export type FloorServerMessage =
  | { type: 'listening'; port: number }
  /** wall-clock instant (performance.timeOrigin + performance.now()) each message's broadcast began */
  | { type: 'broadcasted'; sentAt: number[]; clients: number };
