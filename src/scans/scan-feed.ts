import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { codeFromRecord, type CodeRecord } from '../codes/code.wire';
import type { Logger } from '../logging/logger';
import { Scan, type ScanKind } from './scan.entity';

/**
 * A stored scan as it travels to subscribers, in this process or through Redis:
 * plain JSON, instants as epoch milliseconds. `code` is the code of the scan's
 * (page, ref) as it was right after this scan was counted; null for an orphan scan.
 */
export interface ScanEvent {
  scan: {
    id: string;
    pageId: string;
    ref: string | null;
    kind: ScanKind;
    source: string | null;
    occurredAt: number;
    receivedAt: number;
  };
  code: CodeRecord | null;
}

/** The Scan (with the code as it was after it) that a `scanned` subscriber resolves. */
export function scanFromEvent(event: ScanEvent): Scan {
  const { scan, code } = event;
  return Object.assign(new Scan(), {
    ...scan,
    occurredAt: new Date(scan.occurredAt),
    receivedAt: new Date(scan.receivedAt),
    codeAfterScan: code && codeFromRecord(code),
  });
}

/** Every argument narrows: an event matches when it matches each given one. */
export interface ScanFilter {
  pageId?: string | null;
  codeId?: string | null;
  ref?: string | null;
}

export function matches(filter: ScanFilter, event: ScanEvent): boolean {
  if (filter.pageId != null && filter.pageId !== event.scan.pageId) return false;
  if (filter.ref != null && filter.ref !== event.scan.ref) return false;
  if (filter.codeId != null && filter.codeId !== event.code?.id) return false;
  return true;
}

interface Subscriber {
  filter: ScanFilter;
  /** the events of one published batch that match the filter */
  pushBatch(events: ScanEvent[]): void;
}

export interface ScanSubscription extends AsyncIterableIterator<ScanEvent> {
  return(): Promise<IteratorResult<ScanEvent>>;
}

const REDIS_CHANNEL = 'messenger-code-gateway:scans';
/** How long a stop waits for Redis to acknowledge QUIT before dropping the connections. */
const REDIS_QUIT_TIMEOUT_MS = 1000;

export interface ScanFeedOptions {
  /** events queued for one subscriber before it is cut off as too slow */
  maxBacklog: number;
  redisUrl?: string;
  logger: Logger;
  /** told each time a subscriber is cut off */
  onSubscriberDropped?: () => void;
}

/**
 * Fan-out of stored scans to `scanned` subscribers.
 *
 * Each subscriber has a bounded queue: a subscriber whose connection stops taking
 * messages is cut off (`onOverflow`) once the bound is reached, instead of growing
 * this process's memory or slowing the others, whose queues are independent. Queues
 * hold references to events shared by all subscribers, so a generous bound is cheap.
 *
 * With Redis, every batch is also published once on a channel that every instance
 * subscribes to; an instance delivers its own batches directly, so its subscribers
 * keep receiving while Redis is away. The database stays the source of truth.
 */
export class ScanFeed {
  private readonly subscribers = new Set<Subscriber>();
  private readonly instanceId = randomUUID();
  private readonly publisher?: Redis;
  private readonly listener?: Redis;

  private readonly logger: Logger;

  constructor(private readonly options: ScanFeedOptions) {
    this.logger = options.logger;
    if (options.redisUrl) {
      const redisOptions = {
        // Fail a publish at once while disconnected rather than queueing without bound;
        // the scans are stored, and live delivery resumes on reconnect.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
        lazyConnect: false,
      };
      this.publisher = new Redis(options.redisUrl, redisOptions);
      // The listener's SUBSCRIBE must wait for Redis however long it takes (ioredis then
      // resubscribes by itself after every reconnection).
      this.listener = new Redis(options.redisUrl, { ...redisOptions, enableOfflineQueue: true, maxRetriesPerRequest: null });
      for (const [role, client] of [
        ['publisher', this.publisher],
        ['listener', this.listener],
      ] as const) {
        // One line per outage, not one per reconnection attempt.
        let down = false;
        client.on('error', (error: Error) => {
          if (down) return;
          down = true;
          this.logger.warn({ client: role, error: error.message }, 'redis unreachable; retrying');
        });
        client.on('ready', () => {
          if (!down) return;
          down = false;
          this.logger.info({ client: role }, 'redis reachable again');
        });
      }
      this.listener.subscribe(REDIS_CHANNEL).catch((error: Error) => this.logger.warn({ error: error.message }, 'redis subscribe failed'));
      this.listener.on('message', (_channel: string, message: string) => this.receive(message));
    }
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Delivers a committed batch here and, with Redis, to every other instance. */
  publish(events: ScanEvent[]): void {
    if (events.length === 0) return;
    this.deliver(events);
    if (this.publisher) {
      const message = JSON.stringify({ origin: this.instanceId, events });
      this.publisher.publish(REDIS_CHANNEL, message).catch((error: Error) => {
        this.logger.warn({ error: error.message, events: events.length }, 'scan events not sent to other instances: redis unavailable');
      });
    }
  }

  private receive(message: string): void {
    let parsed: { origin?: string; events?: ScanEvent[] };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      this.logger.warn('ignored a malformed message on the scan channel');
      return;
    }
    if (parsed.origin === this.instanceId || !Array.isArray(parsed.events)) return;
    this.deliver(parsed.events);
  }

  private deliver(events: ScanEvent[]): void {
    for (const subscriber of this.subscribers) {
      const matching = events.filter((event) => matches(subscriber.filter, event));
      if (matching.length > 0) subscriber.pushBatch(matching);
    }
  }

  subscribe(filter: ScanFilter, onOverflow: () => void): ScanSubscription {
    const queue: ScanEvent[] = [];
    let waiting: ((result: IteratorResult<ScanEvent>) => void) | undefined;
    let finished = false;
    const done = (): IteratorResult<ScanEvent> => ({ value: undefined, done: true });

    const finish = () => {
      finished = true;
      queue.length = 0;
      this.subscribers.delete(subscriber);
      waiting?.(done());
      waiting = undefined;
    };
    const subscriber: Subscriber = {
      filter,
      pushBatch: (events) => {
        if (finished) return;
        // Judged before this batch: a subscriber is slow when earlier events still wait,
        // not because one webhook carried many scans at once.
        if (queue.length >= this.options.maxBacklog) {
          finish();
          this.options.onSubscriberDropped?.();
          onOverflow();
          return;
        }
        queue.push(...events);
        if (waiting) {
          const resolve = waiting;
          waiting = undefined;
          resolve({ value: queue.shift() as ScanEvent, done: false });
        }
      },
    };
    this.subscribers.add(subscriber);

    const iterator: ScanSubscription = {
      next: () => {
        const event = queue.shift();
        if (event) return Promise.resolve({ value: event, done: false });
        if (finished) return Promise.resolve(done());
        return new Promise((resolve) => {
          waiting = resolve;
        });
      },
      return: () => {
        finish();
        return Promise.resolve(done());
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Whether Redis (when configured) is connected. */
  async redisReady(): Promise<boolean | undefined> {
    if (!this.publisher) return undefined;
    if (this.publisher.status !== 'ready') return false;
    try {
      await Promise.race([
        this.publisher.ping(),
        new Promise((_resolve, reject) => setTimeout(() => reject(new Error('timeout')), 1000).unref()),
      ]);
      return this.listener?.status === 'ready';
    } catch {
      return false;
    }
  }

  /**
   * Bounded whatever Redis is doing: a connected client is asked to QUIT (so pending
   * publishes go out) for at most REDIS_QUIT_TIMEOUT_MS; one that is not connected, or
   * does not answer in time, is dropped at once.
   */
  async close(): Promise<void> {
    for (const subscriber of [...this.subscribers]) this.subscribers.delete(subscriber);
    await Promise.all([this.publisher, this.listener].map((client) => client && closeRedis(client)));
  }
}

async function closeRedis(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, REDIS_QUIT_TIMEOUT_MS);
  });
  await Promise.race([
    client.quit().then(
      () => undefined,
      () => undefined,
    ),
    timedOut,
  ]);
  clearTimeout(timer);
  client.disconnect();
}
