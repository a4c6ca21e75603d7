/**
 * The load process of row 17 (resume-row.ts), forked for that row alone: dashboard
 * subscribers that remember their last `streamCursor`, lose their sockets in an outage and
 * all resubscribe at once with `after:`, while a steady stream of signed webhooks goes on.
 * Subscribers and the webhook sender share this process, so every instant is on one clock.
 *
 * The subscribers speak the graphql-ws protocol (graphql-transport-ws) over bare `ws`
 * sockets: the outage is a `terminate()` of each socket (no close frame, as when a network
 * drops), which graphql-ws's client cannot do. It reads the gateway's SQLite file
 * (read-only) for the stream position at the resubscription and for the scans stored, by id.
 *
 * IPC: receives one ResumeParams message, answers one ResumeAnswer message, exits.
 */
import 'reflect-metadata';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import WebSocket from 'ws';
import { ScanKind } from '../src/scans/scan.entity';
import { streamCursorOf } from '../src/scans/scan.resolver';
import { cpuMeter, summarize, type LatencySummary } from './stats';
import { signedWebhook } from './workloads';

export interface ResumeParams {
  baseUrl: string;
  /** the gateway's SQLite file, read here (read-only) */
  databasePath: string;
  appSecret: string;
  pageId: string;
  /** subscriber i watches refs[i % refs.length]; scan k goes to refs[k % refs.length] */
  refs: string[];
  subscribers: number;
  /** signed single-scan webhooks per second, steady through every phase */
  rate: number;
  /** live before the outage */
  beforeMs: number;
  /** sockets cut, scans still flowing */
  outageMs: number;
  /** after everyone resubscribed, scans still flowing */
  afterMs: number;
}

export interface ResumeResult {
  subscribers: number;
  scansSent: number;
  webhookFailures: number;
  firstWebhookFailure?: string;
  achievedRate: number;
  /** scans stored (the gateway's database), and stored during the outage */
  stored: number;
  storedDuringOutage: number;
  /** per subscriber: from the start of its resubscription until it held every scan of its ref stored before then */
  catchUp: LatencySummary;
  /** per subscriber: from the start of its resubscription until connection_ack */
  connected: LatencySummary;
  /** scans each subscriber had to catch up on (median) */
  catchUpScansMedian: number;
  /** over all subscribers: scans of their ref stored but never received, received twice, received but not stored, received out of storage order */
  lost: number;
  duplicates: number;
  unexpected: number;
  outOfOrder: number;
  expectedDeliveries: number;
  received: number;
  /** connections the gateway closed and the dashboard opened again (as graphql-ws clients retry), by close code */
  reconnects: number;
  closeCodes: Record<string, number>;
  clientFailures: number;
  firstClientFailure?: string;
  loadCpu: number;
}

export type ResumeAnswer = { ok: true; result: ResumeResult } | { ok: false; error: string };

const SUBSCRIPTION = `subscription ($ref: String, $after: String) { scanned(ref: $ref, after: $after) { id ref streamCursor code { scanCount } } }`;
const CONNECT_PARALLELISM = 100;
const SETTLE_QUIET_MS = 5_000;
const MAX_RECONNECTS = 10;
const RECONNECT_DELAY_MS = 1_000;
const SETTLE_LIMIT_MS = 60_000;

const sleep = (milliseconds: number) => new Promise<void>((resolve) => setTimeout(resolve, milliseconds));

interface NextMessage {
  id?: string;
  type: string;
  payload?: { data?: { scanned?: { id: string; streamCursor: string } }; errors?: unknown } | unknown[];
}

/** One dashboard: what it received (by scan id), in what order, and the last cursor it holds. */
class Dashboard {
  /** scan id → performance.now() of its (first) receipt */
  readonly receivedAt = new Map<string, number>();
  /** scan ids in the order received, duplicates included */
  readonly order: string[] = [];
  duplicates = 0;
  lastCursor: string | undefined;
  socket: WebSocket | undefined;
  resubscribedAt = Number.NaN;
  connectedAt = Number.NaN;
  /** connections the gateway closed (or that failed) and this dashboard opened again */
  reconnects = 0;

  constructor(
    readonly index: number,
    readonly ref: string,
  ) {}
}

class Dashboards {
  readonly members: Dashboard[];
  failures = 0;
  firstFailure: string | undefined;
  /** sockets this process dropped on purpose: their close is the outage, not a failure */
  private readonly dropped = new WeakSet<WebSocket>();
  private closed = false;
  /** between the cut and the resubscription nobody reconnects (the resubscription does) */
  outage = false;
  /** close codes of the connections the gateway closed, and how often */
  readonly closeCodes = new Map<number, number>();

  constructor(
    private readonly url: string,
    count: number,
    refs: string[],
  ) {
    this.members = Array.from({ length: count }, (_, index) => new Dashboard(index, refs[index % refs.length]));
  }

  private fail(dashboard: Dashboard, what: string): void {
    this.failures += 1;
    this.firstFailure ??= `subscriber ${dashboard.index}: ${what}`;
  }

  /**
   * What a dashboard does when the gateway closes its connection (4408 when its
   * connection_init came too late, 1006 when it was dropped): opens another after a
   * second, as graphql-ws clients do, and resumes after the last scan it holds. Counted,
   * and a failure only when it keeps failing.
   */
  private reconnect(dashboard: Dashboard, code: number, origin: string): void {
    this.closeCodes.set(code, (this.closeCodes.get(code) ?? 0) + 1);
    dashboard.reconnects += 1;
    if (dashboard.reconnects > MAX_RECONNECTS) {
      this.fail(dashboard, `closed ${dashboard.reconnects} times, last with ${code}`);
      return;
    }
    setTimeout(
      () => {
        if (!this.closed && !this.outage) void this.subscribe(dashboard, dashboard.lastCursor ?? origin, origin);
      },
      RECONNECT_DELAY_MS + Math.random() * RECONNECT_DELAY_MS,
    );
  }

  /** Connects and subscribes with `after`; resolves at connection_ack (or at the close of a connection never acknowledged). */
  subscribe(dashboard: Dashboard, after: string, origin: string): Promise<void> {
    const socket = new WebSocket(this.url, 'graphql-transport-ws');
    dashboard.socket = socket;
    return new Promise<void>((resolve) => {
      let acknowledged = false;
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: {} })));
      socket.on('message', (data: Buffer) => {
        const message = JSON.parse(data.toString('utf8')) as NextMessage;
        if (message.type === 'next') {
          const scanned = (message.payload as { data?: { scanned?: { id: string; streamCursor: string } } }).data?.scanned;
          if (!scanned) {
            this.fail(dashboard, `unexpected payload ${JSON.stringify(message.payload).slice(0, 200)}`);
            return;
          }
          dashboard.order.push(scanned.id);
          if (dashboard.receivedAt.has(scanned.id)) dashboard.duplicates += 1;
          else dashboard.receivedAt.set(scanned.id, performance.now());
          dashboard.lastCursor = scanned.streamCursor;
        } else if (message.type === 'connection_ack') {
          acknowledged = true;
          dashboard.connectedAt = performance.now();
          socket.send(
            JSON.stringify({
              id: `d${dashboard.index}`,
              type: 'subscribe',
              payload: { query: SUBSCRIPTION, variables: { ref: dashboard.ref, after } },
            }),
          );
          resolve();
        } else if (message.type === 'ping') {
          socket.send(JSON.stringify({ type: 'pong' }));
        } else if (message.type === 'error' || message.type === 'complete') {
          this.fail(dashboard, `${message.type}: ${JSON.stringify(message.payload ?? null).slice(0, 200)}`);
        }
      });
      // A 'close' follows every 'error': the retry is decided there.
      socket.on('error', () => undefined);
      socket.on('close', (code) => {
        if (!acknowledged) resolve();
        if (this.dropped.has(socket) || this.closed) return;
        this.reconnect(dashboard, code, origin);
      });
    });
  }

  /** The outage: every socket dropped without a close frame. */
  cut(): void {
    for (const { socket } of this.members) {
      if (!socket) continue;
      this.dropped.add(socket);
      socket.terminate();
    }
  }

  close(): void {
    this.closed = true;
    this.cut();
  }
}

/** Signed single-scan webhooks at a steady rate (open loop, up to 256 in flight), refs in turn. */
class SteadySender {
  sent = 0;
  answered = 0;
  failures = 0;
  firstFailure: string | undefined;
  private stopped = false;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  private readonly inFlight = new Set<Promise<void>>();
  private loop: Promise<void> | undefined;
  private started = 0;
  private finished = 0;
  private readonly senderPrefix = `resume-${process.pid}-${Date.now().toString(36)}`;

  constructor(
    private readonly params: ResumeParams,
    private readonly base = new URL(params.baseUrl),
  ) {}

  start(): void {
    this.started = performance.now();
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const intervalMs = 1000 / this.params.rate;
    for (let k = 0; !this.stopped; k += 1) {
      const wait = this.started + k * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      if (this.stopped) break;
      if (this.inFlight.size >= 256) await Promise.race(this.inFlight);
      const request = this.send(k).finally(() => this.inFlight.delete(request));
      this.inFlight.add(request);
    }
    await Promise.all(this.inFlight);
    this.finished = performance.now();
  }

  private send(k: number): Promise<void> {
    const { params } = this;
    this.sent += 1;
    const spec = signedWebhook('/webhook', params.appSecret, [
      {
        pageId: params.pageId,
        ref: params.refs[k % params.refs.length],
        kind: ScanKind.REFERRAL,
        source: 'SHORTLINK',
        senderPsid: `${this.senderPrefix}-${k}`,
        timestamp: Date.now(),
      },
    ]);
    return new Promise<void>((resolve) => {
      const failed = (what: string) => {
        this.failures += 1;
        this.firstFailure ??= what;
        resolve();
      };
      const request = http.request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method: spec.method,
          path: spec.path,
          headers: { ...spec.headers, 'content-length': String(Buffer.byteLength(spec.body)) },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => {
            if (response.statusCode === 200) {
              this.answered += 1;
              resolve();
            } else failed(`HTTP ${response.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`);
          });
          response.on('error', (error) => failed(error.message));
        },
      );
      request.on('error', (error) => failed(error.message));
      request.end(spec.body);
    });
  }

  async stop(): Promise<number> {
    this.stopped = true;
    await this.loop;
    this.agent.destroy();
    const spanMs = this.finished - this.started;
    return spanMs > 0 ? (this.answered / spanMs) * 1000 : 0;
  }
}

async function inParallel<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next];
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

interface StoredRow {
  id: string;
  ref: string;
  stream_seq: number;
}

async function resume(params: ResumeParams): Promise<ResumeResult> {
  const database = new BetterSqlite3(params.databasePath, { readonly: true, fileMustExist: true });
  const position = () => (database.prepare('SELECT position FROM scan_stream WHERE id = 1').get() as { position: number }).position;
  const dashboards = new Dashboards(`${params.baseUrl.replace(/^http/, 'ws')}/graphql`, params.subscribers, params.refs);
  const sender = new SteadySender(params);
  const cpu = cpuMeter();
  try {
    // Every dashboard starts from the beginning of the stream: it must end up with every scan of its ref.
    const origin = streamCursorOf(0);
    await inParallel(dashboards.members, CONNECT_PARALLELISM, (dashboard) => dashboards.subscribe(dashboard, origin, origin));
    sender.start();
    await sleep(params.beforeMs);

    const positionAtCut = position();
    dashboards.outage = true;
    dashboards.cut();
    await sleep(params.outageMs);

    // Everyone at once: the position read just before is "every scan stored up to the resubscription".
    const positionAtResume = position();
    dashboards.outage = false;
    await Promise.all(
      dashboards.members.map((dashboard) => {
        dashboard.resubscribedAt = performance.now();
        return dashboards.subscribe(dashboard, dashboard.lastCursor ?? origin, origin);
      }),
    );
    await sleep(params.afterMs);
    const achievedRate = await sender.stop();

    // Wait until every dashboard holds as many distinct scans as its ref has stored (or nothing moves any more).
    const perRef = new Map(
      (database.prepare('SELECT ref, COUNT(*) AS n FROM scan GROUP BY ref').all() as { ref: string; n: number }[]).map((row) => [
        row.ref,
        row.n,
      ]),
    );
    const settleLimit = performance.now() + SETTLE_LIMIT_MS;
    let lastTotal = -1;
    let lastChange = performance.now();
    for (;;) {
      const total = dashboards.members.reduce((sum, dashboard) => sum + dashboard.receivedAt.size, 0);
      if (dashboards.members.every((dashboard) => dashboard.receivedAt.size >= (perRef.get(dashboard.ref) ?? 0))) break;
      if (total !== lastTotal) {
        lastTotal = total;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > SETTLE_QUIET_MS || performance.now() > settleLimit) break;
      await sleep(50);
    }
    dashboards.close();

    const rows = database.prepare('SELECT id, ref, stream_seq FROM scan ORDER BY stream_seq').all() as StoredRow[];
    const seqOf = new Map(rows.map((row) => [row.id, Number(row.stream_seq)]));
    const byRef = new Map<string, StoredRow[]>();
    for (const row of rows) {
      const list = byRef.get(row.ref) ?? [];
      list.push(row);
      byRef.set(row.ref, list);
    }
    let lost = 0;
    let unexpected = 0;
    let outOfOrder = 0;
    let duplicates = 0;
    let expectedDeliveries = 0;
    let received = 0;
    const catchUp: number[] = [];
    const connected: number[] = [];
    const catchUpScans: number[] = [];
    for (const dashboard of dashboards.members) {
      const expected = byRef.get(dashboard.ref) ?? [];
      expectedDeliveries += expected.length;
      received += dashboard.order.length;
      duplicates += dashboard.duplicates;
      for (const row of expected) if (!dashboard.receivedAt.has(row.id)) lost += 1;
      let previous = 0;
      for (const id of dashboard.order) {
        const seq = seqOf.get(id);
        if (seq === undefined) unexpected += 1;
        else if (seq <= previous) outOfOrder += 1;
        else previous = seq;
      }
      // What it had to catch up on: scans of its ref after the last one it held before the cut, stored before it resubscribed.
      const cursorSeq = Math.max(
        0,
        ...[...dashboard.receivedAt.entries()].filter(([, at]) => at < dashboard.resubscribedAt).map(([id]) => seqOf.get(id) ?? 0),
      );
      const goal = expected.filter((row) => row.stream_seq > cursorSeq && row.stream_seq <= positionAtResume);
      catchUpScans.push(goal.length);
      let caughtUp = dashboard.resubscribedAt;
      let complete = true;
      for (const row of goal) {
        const at = dashboard.receivedAt.get(row.id);
        if (at === undefined) complete = false;
        else if (at > caughtUp) caughtUp = at;
      }
      if (complete) catchUp.push(caughtUp - dashboard.resubscribedAt);
      if (!Number.isNaN(dashboard.connectedAt)) connected.push(dashboard.connectedAt - dashboard.resubscribedAt);
    }
    const catchUpSorted = [...catchUpScans].sort((a, b) => a - b);
    return {
      subscribers: params.subscribers,
      scansSent: sender.sent,
      webhookFailures: sender.failures,
      ...(sender.firstFailure === undefined ? {} : { firstWebhookFailure: sender.firstFailure }),
      achievedRate,
      stored: rows.length,
      storedDuringOutage: positionAtResume - positionAtCut,
      catchUp: summarize(catchUp),
      connected: summarize(connected),
      catchUpScansMedian: catchUpSorted[catchUpSorted.length >> 1] ?? 0,
      lost,
      duplicates,
      unexpected,
      outOfOrder,
      expectedDeliveries,
      received,
      reconnects: dashboards.members.reduce((sum, dashboard) => sum + dashboard.reconnects, 0),
      closeCodes: Object.fromEntries(dashboards.closeCodes),
      clientFailures: dashboards.failures,
      ...(dashboards.firstFailure === undefined ? {} : { firstClientFailure: dashboards.firstFailure }),
      loadCpu: cpu(),
    };
  } finally {
    dashboards.close();
    await sender.stop();
    database.close();
  }
}

process.once('message', (params: ResumeParams) => {
  resume(params).then(
    (result) => process.send?.({ ok: true, result } satisfies ResumeAnswer, () => process.exit(0)),
    (error: unknown) =>
      process.send?.(
        { ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies ResumeAnswer,
        () => process.exit(0),
      ),
  );
});
process.on('disconnect', () => process.exit(0));
