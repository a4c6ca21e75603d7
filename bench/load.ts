/**
 * The load generator: a process of its own (forked by run.ts), so that the gateway's
 * measured work and the clients' work are never on the same event loop. It does what
 * the orchestrator asks over IPC (see protocol.ts) and answers with measurements.
 */
import 'reflect-metadata';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { runClosedLoop, SequentialSender } from './http-load';
import type {
  DeliveryRoundParams,
  DeliveryRoundResult,
  DeliveryStats,
  FloorOpenParams,
  FloorRoundParams,
  FloorServerMessage,
  HealthProbeParams,
  HealthProbeResult,
  HttpRoundParams,
  HttpRoundResult,
  LoadOp,
  LoadOps,
  LoadRequest,
  LoadResponse,
  OpenSubscribersParams,
  OpenSubscribersResult,
  ScanTarget,
  SyncSubscribersResult,
} from './protocol';
import { cpuMeter, Samples, summarize } from './stats';
import { BareClientPool, SubscriberPool, type ScannedData } from './subscribers';
import { requestsOf, scanRequest } from './workloads';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function sleepUntil(instant: number): Promise<void> {
  const wait = instant - performance.now();
  if (wait > 0) await sleep(wait);
}

/** Waits until `done()` holds, or until nothing changed (`progress()`) for `quietMs`, or `limitMs` passed. */
async function settle(done: () => boolean, progress: () => number, quietMs: number, limitMs: number): Promise<void> {
  const limit = performance.now() + limitMs;
  let last = progress();
  let lastChange = performance.now();
  while (!done() && performance.now() < limit) {
    await sleep(10);
    const now = progress();
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > quietMs) {
      return;
    }
  }
}

// ---------------------------------------------------------------- HTTP rounds

async function httpRound(params: HttpRoundParams): Promise<HttpRoundResult> {
  const { next, check } = requestsOf(params.workload);
  return runClosedLoop({ baseUrl: params.baseUrl, concurrency: params.concurrency, durationMs: params.durationMs, next, check });
}

// ---------------------------------------------------------------- gateway subscribers

let pool: SubscriberPool | undefined;

async function openSubscribers(params: OpenSubscribersParams): Promise<OpenSubscribersResult> {
  const started = performance.now();
  pool ??= new SubscriberPool();
  await pool.add(params.baseUrl, params.count, params.ref, params.authorization);
  return { open: pool.size, ms: performance.now() - started };
}

function requirePool(): SubscriberPool {
  if (!pool || pool.size === 0) throw new Error('no subscribers are open');
  return pool;
}

/**
 * Posts scans until every subscriber has received the latest: then every subscription is
 * live and no delivery is in flight. A subscription registers a little after its
 * connection is acknowledged, so a subscriber that missed a scan gets another one.
 */
async function sync(subscribers: SubscriberPool, sender: SequentialSender, target: ScanTarget): Promise<number> {
  const deadline = performance.now() + 120_000;
  const attemptMs = 2_000 + subscribers.size / 5;
  while (performance.now() < deadline) {
    const before = subscribers.highestScanCount();
    await sender.send(scanRequest(target));
    const attemptEnd = performance.now() + attemptMs;
    // The highest count anyone holds once someone has this scan is this scan's count.
    while (subscribers.highestScanCount() === before && performance.now() < attemptEnd) await sleep(5);
    const latest = subscribers.highestScanCount();
    if (latest === before) continue;
    while (subscribers.lowestScanCount() < latest && performance.now() < attemptEnd) await sleep(10);
    if (subscribers.lowestScanCount() >= latest) return latest;
  }
  throw new Error(`subscribers not all live after 120 s: ${subscribers.size} open, lowest count ${subscribers.lowestScanCount()}`);
}

async function syncSubscribers(target: ScanTarget): Promise<SyncSubscribersResult> {
  const subscribers = requirePool();
  const started = performance.now();
  const sender = new SequentialSender(target.baseUrl);
  try {
    const scanCount = await sync(subscribers, sender, target);
    return { subscribers: subscribers.size, scanCount, ms: performance.now() - started };
  } finally {
    sender.close();
  }
}

/**
 * Posts `rate` scans per second, one after the other, and times each delivery from the
 * moment its webhook's 200 arrived. Scans are identified by the code's scan count they
 * carry: scan k of the round, posted after the sync whose count was `base`, has base + k + 1.
 */
async function deliveryRound(params: DeliveryRoundParams): Promise<DeliveryRoundResult> {
  const subscribers = requirePool();
  const sender = new SequentialSender(params.baseUrl);
  try {
    const base = await sync(subscribers, sender, params);
    const planned = Math.max(1, Math.round((params.rate * params.durationMs) / 1000));
    const answeredAt = new Float64Array(planned).fill(Number.NaN);
    const seen = new Uint8Array(planned * subscribers.size);
    const receiptScan = new Samples();
    const receiptAt = new Samples();
    const captured: (string | undefined)[] = new Array<string | undefined>(planned);
    const captureFrom = 0;
    let unexpected = 0;
    const failuresBefore = subscribers.failures;

    subscribers.listener = (subscriber, scanCount, receivedAt, result) => {
      const k = scanCount - base - 1;
      const slot = k * subscribers.size + subscriber;
      if (k < 0 || k >= planned || seen[slot] === 1) {
        unexpected += 1;
        return;
      }
      seen[slot] = 1;
      receiptScan.push(k);
      receiptAt.push(receivedAt);
      if (subscriber === captureFrom) {
        captured[k] = JSON.stringify({ id: subscribers.subscriptionId(subscriber), type: 'next', payload: result });
      }
    };

    const intervalMs = 1000 / params.rate;
    const cpu = cpuMeter();
    const start = performance.now();
    for (let k = 0; k < planned; k += 1) {
      await sleepUntil(start + k * intervalMs);
      await sender.send(scanRequest(params));
      answeredAt[k] = performance.now();
    }
    const expected = planned * subscribers.size;
    await settle(
      () => receiptAt.length >= expected,
      () => receiptAt.length,
      3_000,
      30_000,
    );
    subscribers.listener = undefined;

    const latencies = new Float64Array(receiptAt.length);
    const scans = receiptScan.values();
    const at = receiptAt.values();
    for (let i = 0; i < latencies.length; i += 1) latencies[i] = Math.max(0, at[i] - answeredAt[scans[i]]);
    const spanMs = answeredAt[planned - 1] - start;
    return {
      sent: planned,
      subscribers: subscribers.size,
      expected,
      received: receiptAt.length,
      lost: expected - receiptAt.length,
      unexpected,
      latency: summarize(latencies),
      achievedRate: planned > 1 ? ((planned - 1) / spanMs) * 1000 : params.rate,
      clientFailures: subscribers.failures - failuresBefore,
      loadCpu: cpu(),
      messages: captured.map(
        (message, k) => message ?? synthesizedMessage(subscribers.subscriptionId(captureFrom), base + k + 1, params.ref),
      ),
    };
  } finally {
    sender.close();
  }
}

/** The message a lost delivery would have been, for the floor to replay the same number of strings. */
function synthesizedMessage(subscriptionId: string, scanCount: number, ref: string): string {
  const data: ScannedData = { scanned: { id: randomUUID(), ref, kind: 'REFERRAL', code: { scanCount } } };
  return JSON.stringify({ id: subscriptionId, type: 'next', payload: { data } });
}

async function closeSubscribers(): Promise<{ closed: number }> {
  const closed = pool ? await pool.close() : 0;
  pool = undefined;
  return { closed };
}

// ---------------------------------------------------------------- the bare ws floor

interface Floor {
  server: ChildProcess;
  clients: BareClientPool;
}

let floor: Floor | undefined;

function startFloorServer(): Promise<{ server: ChildProcess; port: number }> {
  const server = fork(join(__dirname, 'ws-floor-server.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the floor server exited (${code}) before listening`));
    server.once('exit', onExit);
    server.once('message', (message: FloorServerMessage) => {
      server.off('exit', onExit);
      if (message.type === 'listening') resolve({ server, port: message.port });
      else reject(new Error(`unexpected first message from the floor server: ${message.type}`));
    });
  });
}

async function openFloor(params: FloorOpenParams): Promise<OpenSubscribersResult> {
  const started = performance.now();
  if (floor) await closeFloor();
  const { server, port } = await startFloorServer();
  const clients = new BareClientPool();
  floor = { server, clients };
  await clients.add(`ws://127.0.0.1:${port}`, params.subscribers);
  return { open: clients.size, ms: performance.now() - started };
}

async function floorRound(params: FloorRoundParams): Promise<DeliveryStats> {
  if (!floor) throw new Error('the floor is not open');
  const { server, clients } = floor;
  const indexOf = new Map(params.messages.map((message, index) => [message, index]));
  const sent = params.messages.length;
  const seen = new Uint8Array(sent * clients.size);
  const receiptIndex = new Samples();
  const receiptAt = new Samples();
  let unexpected = 0;
  const failuresBefore = clients.failures;

  clients.listener = (client, text, receivedAt) => {
    JSON.parse(text); // what any client does with a message; the graphql-ws clients of the gateway do more
    const index = indexOf.get(text);
    const slot = index === undefined ? -1 : index * clients.size + client;
    if (index === undefined || seen[slot] === 1) {
      unexpected += 1;
      return;
    }
    seen[slot] = 1;
    receiptIndex.push(index);
    receiptAt.push(receivedAt);
  };

  const broadcasted = new Promise<number[]>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the floor server exited (${code}) during a broadcast`));
    server.once('exit', onExit);
    server.once('message', (message: FloorServerMessage) => {
      server.off('exit', onExit);
      if (message.type === 'broadcasted') resolve(message.sentAt);
      else reject(new Error(`unexpected message from the floor server: ${message.type}`));
    });
  });
  const cpu = cpuMeter();
  server.send({ op: 'broadcast', messages: params.messages, intervalMs: 1000 / params.rate });
  const sentAt = await broadcasted;
  const expected = sent * clients.size;
  await settle(
    () => receiptAt.length >= expected,
    () => receiptAt.length,
    3_000,
    30_000,
  );
  clients.listener = undefined;

  const indexes = receiptIndex.values();
  const at = receiptAt.values();
  const latencies = new Float64Array(at.length);
  for (let i = 0; i < latencies.length; i += 1) latencies[i] = Math.max(0, at[i] - sentAt[indexes[i]]);
  const spanMs = sentAt[sent - 1] - sentAt[0];
  return {
    sent,
    subscribers: clients.size,
    expected,
    received: at.length,
    lost: expected - at.length,
    unexpected,
    latency: summarize(latencies),
    achievedRate: sent > 1 ? ((sent - 1) / spanMs) * 1000 : params.rate,
    clientFailures: clients.failures - failuresBefore,
    loadCpu: cpu(),
  };
}

async function closeFloor(): Promise<{ closed: number }> {
  if (!floor) return { closed: 0 };
  const { server, clients } = floor;
  floor = undefined;
  const closed = await clients.close();
  server.disconnect();
  return { closed };
}

// ---------------------------------------------------------------- health under attack

/** How long /healthz takes while something else happens to the gateway: its event loop's responsiveness. */
async function healthProbe(params: HealthProbeParams): Promise<HealthProbeResult> {
  const latencies = new Samples();
  let failures = 0;
  const end = performance.now() + params.durationMs;
  while (performance.now() < end) {
    const started = performance.now();
    try {
      const response = await fetch(`${params.baseUrl}/healthz`, { signal: AbortSignal.timeout(60_000) });
      await response.arrayBuffer();
      if (response.status !== 200) failures += 1;
    } catch {
      failures += 1;
    }
    const took = performance.now() - started;
    latencies.push(took);
    await sleepUntil(started + params.intervalMs);
  }
  return { samples: latencies.length, latency: summarize(latencies.values()), failures };
}

// ---------------------------------------------------------------- dispatch

type Handlers = { [K in LoadOp]: (params: LoadOps[K]['params']) => Promise<LoadOps[K]['result']> };

const handlers: Handlers = {
  http: httpRound,
  healthProbe,
  openSubscribers,
  syncSubscribers,
  deliveryRound,
  closeSubscribers,
  openFloor,
  floorRound,
  closeFloor,
};

function answer(response: LoadResponse): void {
  process.send?.(response);
}

process.on('message', (request: LoadRequest) => {
  const handler = handlers[request.op] as (params: unknown) => Promise<unknown>;
  handler(request.params).then(
    (result) => answer({ id: request.id, ok: true, result }),
    (error: unknown) =>
      answer({ id: request.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});

// The orchestrator is the only reason to live: leave with it, taking the floor server along.
process.on('disconnect', () => {
  floor?.server.kill('SIGKILL');
  process.exit(0);
});
