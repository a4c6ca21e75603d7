import { randomUUID } from 'node:crypto';
import Redis from 'ioredis';
import { logger } from './logger';

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
    kind: string;
    source: string | null;
    occurredAt: number;
    receivedAt: number;
  };
  code: {
    id: string;
    pageId: string;
    type: string;
    ref: string | null;
    label: string | null;
    provider: string;
    imageSize: number;
    imageId: string;
    createdAt: number;
    scanCount: number;
    lastScannedAt: number | null;
  } | null;
}

/** Every argument narrows: an event matches when it matches each given one. */
export interface ScanFilter {
  pageId?: string | null;
  codeId?: string | null;
  ref?: string | null;
}

function matches(filter: ScanFilter, event: ScanEvent): boolean {
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

  constructor(private readonly options: { maxBacklog: number; redisUrl?: string }) {
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
      for (const client of [this.publisher, this.listener]) {
        client.on('error', (error: Error) => logger.warn('redis error', { error: error.message }));
      }
      this.listener.subscribe(REDIS_CHANNEL).catch((error: Error) => logger.warn('redis subscribe failed', { error: error.message }));
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
        logger.warn('scan events not sent to other instances: redis unavailable', { error: error.message, events: events.length });
      });
    }
  }

  private receive(message: string): void {
    let parsed: { origin?: string; events?: ScanEvent[] };
    try {
      parsed = JSON.parse(message) as typeof parsed;
    } catch {
      logger.warn('ignored a malformed message on the scan channel');
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

  async close(): Promise<void> {
    for (const subscriber of [...this.subscribers]) this.subscribers.delete(subscriber);
    await Promise.all([this.publisher, this.listener].map((client) => client?.quit().catch(() => client.disconnect())));
  }
}
