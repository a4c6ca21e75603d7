/**
 * Many WebSocket subscribers in the load process: real graphql-ws clients of the
 * gateway's `scanned` subscription (one connection each, the honest worst case), and
 * bare `ws` clients of the floor's broadcast server.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FormattedExecutionResult } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** Runs `open(i)` for i in 0..count-1 with at most `parallel` of them pending at once. */
async function openAll(count: number, parallel: number, open: (index: number) => Promise<void>): Promise<void> {
  let nextIndex = 0;
  const worker = async () => {
    while (nextIndex < count) {
      const index = nextIndex;
      nextIndex += 1;
      await open(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

export interface ScannedData {
  scanned: { id: string; ref: string; kind: string; code: { scanCount: number } | null };
}

/** Called on every delivery: which subscriber, the code's scan count it carries, when (performance.now()). */
export type ScannedListener = (
  subscriber: number,
  scanCount: number,
  receivedAt: number,
  result: FormattedExecutionResult<ScannedData, unknown>,
) => void;

interface PoolMember {
  client: Client;
  subscriptionId: string;
}

const CONNECT_PARALLELISM = 100;
const CONNECT_TIMEOUT_MS = 30_000;

export function scannedSubscription(ref: string): string {
  return `subscription { scanned(ref: ${JSON.stringify(ref)}) { id ref kind code { scanCount } } }`;
}

export class SubscriberPool {
  private readonly members: PoolMember[] = [];
  /** highest scan count each subscriber has received (0: none yet) */
  lastScanCount: number[] = [];
  /** subscribers whose connection or subscription failed or ended while open */
  failures = 0;
  firstFailure: string | undefined;
  listener: ScannedListener | undefined;
  private closing = false;

  get size(): number {
    return this.members.length;
  }

  subscriptionId(subscriber: number): string {
    return this.members[subscriber].subscriptionId;
  }

  /** Opens `count` more connections, each subscribed to `scanned(ref:)`; resolves once every one is acknowledged. */
  async add(baseUrl: string, count: number, ref: string, authorization?: string): Promise<void> {
    const url = `${baseUrl.replace(/^http/, 'ws')}/graphql`;
    const query = scannedSubscription(ref);
    await openAll(count, CONNECT_PARALLELISM, () => this.open(url, query, authorization));
  }

  private open(url: string, query: string, authorization: string | undefined): Promise<void> {
    const index = this.members.length;
    const subscriptionId = randomUUID();
    this.lastScanCount.push(0);
    return new Promise<void>((resolve, reject) => {
      let connected = false;
      const timer = setTimeout(
        () => reject(new Error(`subscriber ${index} not connected after ${CONNECT_TIMEOUT_MS} ms`)),
        CONNECT_TIMEOUT_MS,
      );
      const fail = (what: string) => {
        if (this.closing) return;
        if (!connected) {
          clearTimeout(timer);
          reject(new Error(`subscriber ${index}: ${what}`));
          return;
        }
        this.failures += 1;
        this.firstFailure ??= `subscriber ${index}: ${what}`;
      };
      const client = createClient({
        url,
        webSocketImpl: WebSocket,
        ...(authorization === undefined ? {} : { connectionParams: { authorization } }),
        lazy: false,
        retryAttempts: 0,
        generateID: () => subscriptionId,
        on: {
          connected: () => {
            connected = true;
            clearTimeout(timer);
            resolve();
          },
          closed: (event) => fail(`connection closed (${(event as { code?: number }).code ?? '?'})`),
          error: (error) => fail(`connection error: ${error instanceof Error ? error.message : String(error)}`),
        },
      });
      this.members.push({ client, subscriptionId });
      client.subscribe<ScannedData>(
        { query },
        {
          next: (result) => {
            const receivedAt = performance.now();
            const scanCount = result.data?.scanned.code?.scanCount;
            if (scanCount === undefined) {
              fail(`unexpected payload ${JSON.stringify(result).slice(0, 200)}`);
              return;
            }
            if (scanCount > this.lastScanCount[index]) this.lastScanCount[index] = scanCount;
            this.listener?.(index, scanCount, receivedAt, result);
          },
          error: (error) => fail(`subscription error: ${JSON.stringify(error).slice(0, 200)}`),
          complete: () => fail('subscription completed by the server'),
        },
      );
    });
  }

  lowestScanCount(): number {
    let lowest = Number.POSITIVE_INFINITY;
    for (const count of this.lastScanCount) if (count < lowest) lowest = count;
    return lowest;
  }

  highestScanCount(): number {
    let highest = 0;
    for (const count of this.lastScanCount) if (count > highest) highest = count;
    return highest;
  }

  async close(): Promise<number> {
    this.closing = true;
    const closed = this.members.length;
    await Promise.all(this.members.map(({ client }) => client.dispose()));
    this.members.length = 0;
    this.lastScanCount = [];
    return closed;
  }
}

/** Called on every message a bare client receives: which client, the text, when (wall clock, ms). */
export type BareListener = (client: number, text: string, receivedAtWallMs: number) => void;

/** Bare `ws` clients of the floor's broadcast server. */
export class BareClientPool {
  private readonly sockets: WebSocket[] = [];
  failures = 0;
  listener: BareListener | undefined;
  private closing = false;

  get size(): number {
    return this.sockets.length;
  }

  async add(url: string, count: number): Promise<void> {
    await openAll(count, CONNECT_PARALLELISM, () => this.open(url));
  }

  private open(url: string): Promise<void> {
    const index = this.sockets.length;
    const socket = new WebSocket(url);
    this.sockets.push(socket);
    socket.on('message', (data: Buffer) => {
      const receivedAt = performance.timeOrigin + performance.now();
      this.listener?.(index, data.toString('utf8'), receivedAt);
    });
    return new Promise<void>((resolve, reject) => {
      let opened = false;
      socket.once('open', () => {
        opened = true;
        resolve();
      });
      socket.on('error', (error) => {
        if (!opened) reject(error);
      });
      socket.on('close', () => {
        if (opened && !this.closing) this.failures += 1;
      });
    });
  }

  async close(): Promise<number> {
    this.closing = true;
    const closed = this.sockets.length;
    await Promise.all(
      this.sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            if (socket.readyState === WebSocket.CLOSED) return resolve();
            socket.once('close', () => resolve());
            socket.close();
          }),
      ),
    );
    this.sockets.length = 0;
    return closed;
  }
}
