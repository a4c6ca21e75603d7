import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import Redis from 'ioredis';
import { LRUCache } from 'lru-cache';
import { Access, type PageScope } from '../access';
import { CodeTracking, CodeType } from '../codes/code.entity';
import { codeFromRecord, type CodeRecord } from '../codes/code.wire';
import { CodeProviderKind } from '../images/image.types';
import type { Logger } from '../logging/logger';
import { closeRedis } from '../redis/close-redis';
import type { RedisSettings } from '../redis/redis-settings';
import type { FeedRejectionReason } from '../metrics/gateway-metrics';
import { Scan, ScanKind } from './scan.entity';

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
    /** position in the order scans were stored, across instances (Scan.streamSeq) */
    streamSeq: number;
  };
  code: CodeRecord | null;
}

/** The Scan (with the code as it was after it) that a `scanned` subscriber resolves. */
export function scanFromEvent(event: ScanEvent): Scan {
  // streamSeq travels in `scan` and lands on the Scan with the other fields.
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
  /** what the subscriber's key may read: required, so that no subscription can leave it out */
  scope: PageScope;
}

export function matches(filter: ScanFilter, event: ScanEvent): boolean {
  if (!filter.scope.covers(event.scan.pageId)) return false;
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

/** The channel after the deployment's REDIS_PREFIX. */
const REDIS_CHANNEL_NAME = 'scans';

// ---------------------------------------------------------------------------------------
// Messages on the Redis channel
//
// Anyone who can reach Redis can publish on the channel, so every message is signed and
// checked before anything in it is believed: a frame is `mcg1.<MAC>.<JSON>`, where MAC is
// the hex HMAC-SHA256 of exactly the JSON bytes that follow, keyed with deriveFeedKey().
// A frame that is too large, unsigned, wrongly signed, or whose JSON is not a FeedMessage
// is dropped whole: it was forged or corrupted, so none of its events is delivered.

/** The label the feed key is derived under; a new format gets a new label (and prefix). */
const FEED_KEY_LABEL = 'messenger-code-gateway/redis-scan-feed/v1';
const FRAME_PREFIX = 'mcg1.';
const MAC_HEX_LENGTH = 64;
const FRAME_HEADER_BYTES = FRAME_PREFIX.length + MAC_HEX_LENGTH + 1;
const FRAME_PREFIX_BYTES = Buffer.from(FRAME_PREFIX);
const FRAME_SEPARATOR = '.'.charCodeAt(0);

/** Largest frame accepted (and sent): refused before its MAC is computed or its JSON parsed. */
export const MAX_FEED_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Most events in one message; a larger batch is sent as several messages. */
export const MAX_FEED_MESSAGE_EVENTS = 1000;

/**
 * Bounds of a scan event's fields on the channel: above the database columns (so that
 * nothing an instance stores is refused by the others), far below what could hurt.
 */
const MAX_ID_LENGTH = 64;
const MAX_PAGE_ID_LENGTH = 64;
const MAX_REF_LENGTH = 4096;
const MAX_SOURCE_LENGTH = 256;
const MAX_LABEL_LENGTH = 1000;
/** The largest instant a Date holds. */
const MAX_EPOCH_MILLIS = 8.64e15;
const MAX_IMAGE_SIZE = 100_000;

/** One batch of scan events on the channel, from the instance `origin`. */
export interface FeedMessage {
  origin: string;
  events: ScanEvent[];
}

export type FeedDecoding =
  | { ok: true; message: FeedMessage }
  | { ok: false; reason: FeedRejectionReason; /** what was wrong, without the message's content */ detail: string };

/**
 * The key that signs the channel's messages, derived from a secret every instance
 * shares: APP_SECRET, else PSID_HASH_KEY. Undefined with neither: messages could not be
 * authenticated, so the feed then neither sends to Redis nor accepts from it.
 */
export function deriveFeedKey(secrets: { appSecret?: string; psidHashKey?: string }): Buffer | undefined {
  const secret = secrets.appSecret || secrets.psidHashKey;
  return secret ? createHmac('sha256', secret).update(FEED_KEY_LABEL).digest() : undefined;
}

/** One signed frame carrying `message`, as it is published. */
export function encodeFeedMessage(key: Buffer, message: FeedMessage): Buffer {
  const json = Buffer.from(JSON.stringify(message));
  const mac = createHmac('sha256', key).update(json).digest('hex');
  return Buffer.concat([Buffer.from(`${FRAME_PREFIX}${mac}.`), json]);
}

/**
 * The frames that carry `events` from `origin`: at most MAX_FEED_MESSAGE_EVENTS events
 * and `maxBytes` bytes each, so every instance accepts them. Events that break the
 * channel's bounds are left out (every instance would drop the whole message for them)
 * and reported as `refused`.
 */
export function encodeFeedMessages(
  key: Buffer,
  origin: string,
  events: ScanEvent[],
  maxBytes = MAX_FEED_MESSAGE_BYTES,
): { frames: Buffer[]; refused: { index: number; detail: string }[] } {
  const refused: { index: number; detail: string }[] = [];
  const sendable: ScanEvent[] = [];
  events.forEach((event, index) => {
    try {
      readScanEvent(event, 'event');
      sendable.push(event);
    } catch (error) {
      if (!(error instanceof InvalidFeedMessage)) throw error;
      refused.push({ index, detail: error.message });
    }
  });
  const frames: Buffer[] = [];
  const encode = (chunk: ScanEvent[]): void => {
    const frame = encodeFeedMessage(key, { origin, events: chunk });
    if (frame.length <= maxBytes) {
      frames.push(frame);
    } else if (chunk.length > 1) {
      const half = Math.ceil(chunk.length / 2);
      encode(chunk.slice(0, half));
      encode(chunk.slice(half));
    } else {
      refused.push({ index: events.indexOf(chunk[0]), detail: `event: larger than ${maxBytes} bytes on its own` });
    }
  };
  for (let start = 0; start < sendable.length; start += MAX_FEED_MESSAGE_EVENTS) {
    encode(sendable.slice(start, start + MAX_FEED_MESSAGE_EVENTS));
  }
  return { frames, refused };
}

/**
 * Checks a frame received from the channel, in order of cost: its size, its MAC (over the
 * raw bytes, compared in constant time), then its JSON and the shape of every event. The
 * events returned are fresh objects holding only the known fields.
 */
export function decodeFeedMessage(key: Buffer, frame: Buffer, maxBytes = MAX_FEED_MESSAGE_BYTES): FeedDecoding {
  if (frame.length > maxBytes) return { ok: false, reason: 'too_large', detail: `${frame.length} bytes, more than ${maxBytes}` };
  if (frame.length < FRAME_HEADER_BYTES || !frame.subarray(0, FRAME_PREFIX_BYTES.length).equals(FRAME_PREFIX_BYTES)) {
    return { ok: false, reason: 'unauthenticated', detail: 'not signed' };
  }
  const macHex = frame.toString('latin1', FRAME_PREFIX_BYTES.length, FRAME_HEADER_BYTES - 1);
  const given = /^[0-9a-f]+$/.test(macHex) ? Buffer.from(macHex, 'hex') : Buffer.alloc(0);
  if (given.length !== MAC_HEX_LENGTH / 2 || frame[FRAME_HEADER_BYTES - 1] !== FRAME_SEPARATOR) {
    return { ok: false, reason: 'unauthenticated', detail: 'not signed' };
  }
  const json = frame.subarray(FRAME_HEADER_BYTES);
  const expected = createHmac('sha256', key).update(json).digest();
  if (!timingSafeEqual(given, expected)) return { ok: false, reason: 'unauthenticated', detail: 'bad signature' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'not JSON' };
  }
  try {
    return { ok: true, message: readFeedMessage(parsed) };
  } catch (error) {
    if (!(error instanceof InvalidFeedMessage)) throw error;
    return { ok: false, reason: 'malformed', detail: error.message };
  }
}

/** Whether `frame`'s JSON begins with `start` (an instance's `{"origin":"…",`), without decoding it. */
function isMessageFrom(frame: Buffer, start: Buffer): boolean {
  return (
    frame.length > FRAME_HEADER_BYTES + start.length && frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + start.length).equals(start)
  );
}

class InvalidFeedMessage extends Error {}

function invalid(path: string, expected: string): never {
  throw new InvalidFeedMessage(`${path}: expected ${expected}`);
}

function readObject(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(path, 'an object');
  return value as Record<string, unknown>;
}

function readString(value: unknown, path: string, minLength: number, maxLength: number): string {
  if (typeof value !== 'string' || value.length < minLength || value.length > maxLength) {
    invalid(path, `a string of ${minLength} to ${maxLength} characters`);
  }
  return value;
}

function readNullableString(value: unknown, path: string, maxLength: number): string | null {
  return value === null ? null : readString(value, path, 0, maxLength);
}

function readInteger(value: unknown, path: string, max: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > max) invalid(path, `an integer from 0 to ${max}`);
  return value;
}

function readOneOf<T extends string>(value: unknown, path: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) invalid(path, `one of ${allowed.join(', ')}`);
  return value as T;
}

const SCAN_KINDS = Object.values(ScanKind);
const CODE_TYPES = Object.values(CodeType);
const CODE_PROVIDERS = Object.values(CodeProviderKind);
const CODE_TRACKINGS = Object.values(CodeTracking);
const MAX_SLUG_LENGTH = 32;

function readCodeRecord(value: unknown, path: string): CodeRecord {
  const code = readObject(value, path);
  return {
    id: readString(code.id, `${path}.id`, 1, MAX_ID_LENGTH),
    pageId: readString(code.pageId, `${path}.pageId`, 1, MAX_PAGE_ID_LENGTH),
    type: readOneOf(code.type, `${path}.type`, CODE_TYPES),
    ref: readNullableString(code.ref, `${path}.ref`, MAX_REF_LENGTH),
    label: readNullableString(code.label, `${path}.label`, MAX_LABEL_LENGTH),
    provider: readOneOf(code.provider, `${path}.provider`, CODE_PROVIDERS),
    imageSize: readInteger(code.imageSize, `${path}.imageSize`, MAX_IMAGE_SIZE),
    imageId: readString(code.imageId, `${path}.imageId`, 1, MAX_ID_LENGTH),
    createdAt: readInteger(code.createdAt, `${path}.createdAt`, MAX_EPOCH_MILLIS),
    scanCount: readInteger(code.scanCount, `${path}.scanCount`, Number.MAX_SAFE_INTEGER),
    lastScannedAt: code.lastScannedAt === null ? null : readInteger(code.lastScannedAt, `${path}.lastScannedAt`, MAX_EPOCH_MILLIS),
    tracking: readOneOf(code.tracking, `${path}.tracking`, CODE_TRACKINGS),
    slug: readNullableString(code.slug, `${path}.slug`, MAX_SLUG_LENGTH),
    visitCount: readInteger(code.visitCount, `${path}.visitCount`, Number.MAX_SAFE_INTEGER),
  };
}

function readScanEvent(value: unknown, path: string): ScanEvent {
  const event = readObject(value, path);
  const scan = readObject(event.scan, `${path}.scan`);
  return {
    scan: {
      id: readString(scan.id, `${path}.scan.id`, 1, MAX_ID_LENGTH),
      pageId: readString(scan.pageId, `${path}.scan.pageId`, 1, MAX_PAGE_ID_LENGTH),
      ref: readNullableString(scan.ref, `${path}.scan.ref`, MAX_REF_LENGTH),
      kind: readOneOf(scan.kind, `${path}.scan.kind`, SCAN_KINDS),
      source: readNullableString(scan.source, `${path}.scan.source`, MAX_SOURCE_LENGTH),
      occurredAt: readInteger(scan.occurredAt, `${path}.scan.occurredAt`, MAX_EPOCH_MILLIS),
      receivedAt: readInteger(scan.receivedAt, `${path}.scan.receivedAt`, MAX_EPOCH_MILLIS),
      streamSeq: readInteger(scan.streamSeq, `${path}.scan.streamSeq`, Number.MAX_SAFE_INTEGER),
    },
    code: event.code === null ? null : readCodeRecord(event.code, `${path}.code`),
  };
}

function readFeedMessage(value: unknown): FeedMessage {
  const message = readObject(value, 'message');
  const origin = readString(message.origin, 'origin', 1, MAX_ID_LENGTH);
  const events = message.events;
  if (!Array.isArray(events) || events.length === 0 || events.length > MAX_FEED_MESSAGE_EVENTS) {
    invalid('events', `an array of 1 to ${MAX_FEED_MESSAGE_EVENTS} events`);
  }
  return { origin, events: events.map((event, index) => readScanEvent(event, `events[${index}]`)) };
}

/** At most one warn line per REJECTION_WARN_INTERVAL_MS about dropped messages. */
export const REJECTION_WARN_INTERVAL_MS = 60_000;

/**
 * Logs dropped channel messages at warn without letting a flood of them flood the log:
 * the first at once, then at most one line per interval, which says how many were
 * dropped since the previous line (each one is counted in /metrics anyway).
 */
export class RejectionLog {
  private lastLineAt = -Infinity;
  private unlogged = 0;

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = REJECTION_WARN_INTERVAL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  report(reason: FeedRejectionReason, detail: string): void {
    const now = this.now();
    if (now - this.lastLineAt < this.intervalMs) {
      this.unlogged += 1;
      return;
    }
    this.logger.warn(
      { reason, detail, droppedSincePreviousLine: this.unlogged },
      'dropped a message on the redis scan channel (forged, corrupted, or signed with another APP_SECRET); ' +
        'further drops are counted in gateway_feed_messages_rejected_total and logged at most once a minute',
    );
    this.lastLineAt = now;
    this.unlogged = 0;
  }
}

/**
 * The scans as the database holds them, in storage order (see the StreamOrder migration):
 * what the feed reads to fill a gap in what it received, and to replay a resuming subscriber.
 */
export interface StoredScanStream {
  /** the position of the last scan stored */
  position(): Promise<number>;
  /**
   * Scans stored at positions in (after, upTo] that match `filter`, oldest first, at most
   * `limit`; each with its code as it is now (not as it was right after the scan).
   */
  readAfter(after: number, upTo: number, filter: ScanFilter, limit: number): Promise<ScanEvent[]>;
}

/** Scans read per query when a subscriber resumes or the feed fills a gap. */
const STREAM_PAGE = 500;
/** Events held ahead of a gap; beyond this they are dropped and read back from the database instead. */
const MAX_EARLY_EVENTS = 10_000;
/**
 * Recent events kept by position, so that subscribers replaying the same scans (a wall of
 * dashboards back from an outage) hold the same event objects, and share their execution
 * (subscribeSharingResults) instead of executing each scan once per screen.
 */
const MAX_RECENT_EVENTS = 10_000;
/** How often, while someone subscribes, the feed compares what it delivered with the database's position. */
export const STREAM_CHECK_INTERVAL_MS = 2_000;
/**
 * How long a gap in the positions received may stay open before the feed reads it from the
 * database. With two instances ingesting, gaps are the rule, not the exception: each one's
 * batch often reaches the other before the batch numbered just before it, which is on its way
 * through Redis. Read at once, every such gap cost the database and the gateway three queries
 * (measured in bench row 19: one catch-up for every other ingest transaction); waited for, it
 * is filled by the message a few milliseconds later. A message Redis lost is read this much later.
 */
export const HOLE_GRACE_MS = 200;

export interface ScanFeedOptions {
  /** events queued for one subscriber before it is cut off as too slow */
  maxBacklog: number;
  /** the database's scans in storage order */
  stream: StoredScanStream;
  /**
   * The first position this process committed and has not published yet (ScanWriter's
   * unpublishedFrom): the feed reads the database no further than the one before it.
   */
  unpublishedFrom?: () => number | undefined;
  /** how often the feed checks it missed nothing (STREAM_CHECK_INTERVAL_MS) */
  streamCheckIntervalMs?: number;
  /** how long a gap may stay open before it is read from the database (HOLE_GRACE_MS) */
  holeGraceMs?: number;
  /** with Redis, batches go to every instance of the deployment on the channel `<prefix>scans` */
  redis?: RedisSettings;
  /**
   * The shared secrets the Redis messages' key is derived from (deriveFeedKey); without
   * either, a feed with `redis` neither sends to Redis nor accepts from it.
   */
  secrets?: { appSecret?: string; psidHashKey?: string };
  logger: Logger;
  /** told each time a subscriber is cut off */
  onSubscriberDropped?: () => void;
  /** told each time a message on the Redis channel is dropped undelivered */
  onMessageRejected?: (reason: FeedRejectionReason) => void;
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
 * keep receiving while Redis is away. The database stays the source of truth. Messages
 * on the channel are signed, and checked before delivery (decodeFeedMessage).
 *
 * Delivery follows storage order: every scan has a position, contiguous across instances,
 * and the feed hands subscribers position n only after n - 1. Events arriving ahead of a
 * hole (a message Redis lost, another instance's batch overtaking this one's) are held
 * while the hole is read from the database; events at or below what was delivered are
 * dropped. While anyone subscribes, the feed also compares what it delivered with the
 * database's position every few seconds, so scans stored elsewhere while Redis was away
 * (or without Redis at all) still reach every subscriber, in order, once.
 */
export class ScanFeed {
  private readonly subscribers = new Set<Subscriber>();
  /** the subscribers of one ref, by ref (a scan is offered to its ref's and to `anyRef`) */
  private readonly byRef = new Map<string, Set<Subscriber>>();
  private readonly anyRef = new Set<Subscriber>();
  /** the highest position delivered to subscribers; undefined until read from the database */
  private delivered: number | undefined;
  /** events received ahead of `delivered + 1`, by position */
  private readonly early = new Map<number, ScanEvent>();
  /**
   * Recent events by position, the least recently stored dropped first. Not a Map trimmed by
   * deleting its first key: V8 leaves deleted entries in place until it rehashes, so finding the
   * first live key walks every one deleted before it, a tenth of a busy gateway's CPU.
   */
  private readonly recent = new LRUCache<number, ScanEvent>({ max: MAX_RECENT_EVENTS });
  private catchingUp = false;
  private catchUpAgain = false;
  /** armed while a gap is open: reads it from the database unless a message fills it first */
  private holeTimer: NodeJS.Timeout | undefined;
  /** the missing position the timer waits for */
  private holeAt: number | undefined;
  private readonly streamCheck: NodeJS.Timeout;
  private closed = false;
  private readonly instanceId = randomUUID();
  private readonly publisher?: Redis;
  private readonly listener?: Redis;
  /** signs what is sent and authenticates what is received; without it, Redis carries nothing */
  private readonly key?: Buffer;
  private readonly rejections: RejectionLog;
  /** events published here and not yet sent to Redis (sendOutgoing) */
  private outgoing: ScanEvent[] = [];
  /** how a message sent by this instance begins (encodeFeedMessage): the listener skips its own */
  private readonly ownMessageStart: Buffer;
  /** the Redis channel of this deployment's instances (with Redis) */
  private readonly channel?: string;

  private readonly logger: Logger;

  constructor(private readonly options: ScanFeedOptions) {
    this.logger = options.logger;
    this.rejections = new RejectionLog(this.logger);
    this.ownMessageStart = Buffer.from(`${JSON.stringify({ origin: this.instanceId }).slice(0, -1)},`);
    this.streamCheck = setInterval(() => {
      if (this.subscribers.size > 0) this.catchUp();
    }, options.streamCheckIntervalMs ?? STREAM_CHECK_INTERVAL_MS);
    this.streamCheck.unref();
    if (options.redis) {
      this.channel = `${options.redis.prefix}${REDIS_CHANNEL_NAME}`;
      this.key = deriveFeedKey(options.secrets ?? {});
      // Still connected (REDIS_URL asks for it, and /readyz reports it), but nothing is
      // sent nor subscribed to: what arrived could not be told from a forgery.
      if (!this.key) {
        this.logger.warn(
          'REDIS_URL is set but neither APP_SECRET nor PSID_HASH_KEY is: scans are not shared with other instances through Redis, ' +
            'because their messages could not be authenticated; set APP_SECRET (the same on every instance) to share them',
        );
      }
      const redisOptions = {
        // Fail a publish at once while disconnected rather than queueing without bound;
        // the scans are stored, and live delivery resumes on reconnect.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
        lazyConnect: false,
      };
      this.publisher = new Redis(options.redis.url, redisOptions);
      // The listener's SUBSCRIBE must wait for Redis however long it takes (ioredis then
      // resubscribes by itself after every reconnection).
      this.listener = new Redis(options.redis.url, { ...redisOptions, enableOfflineQueue: true, maxRetriesPerRequest: null });
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
          // What other instances published meanwhile is lost on the channel, not in the database.
          if (role === 'listener') this.catchUp();
        });
      }
      if (this.key) {
        this.listener.subscribe(this.channel).catch((error: Error) => this.logger.warn({ error: error.message }, 'redis subscribe failed'));
        // The raw bytes: the MAC covers exactly them, and the size is known before any decoding.
        this.listener.on('messageBuffer', (_channel: Buffer, message: Buffer | undefined) => this.receive(message));
      }
    }
  }

  /**
   * Reads the database's position: scans stored before it are not delivered live (there
   * was no subscriber here to want them). The gateway awaits it before it serves.
   */
  async start(): Promise<void> {
    const position = await this.options.stream.position();
    if (this.delivered === undefined) this.delivered = position;
    this.drain();
  }

  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /**
   * Delivers a committed batch here at once and, with Redis, to every other instance: the
   * batches committed in one turn of the event loop leave in one message (each message wakes
   * Redis and every instance), sent before the next turn.
   */
  publish(events: ScanEvent[]): void {
    if (events.length === 0) return;
    this.accept(events);
    if (!this.publisher || !this.key) return;
    this.outgoing.push(...events);
    if (this.outgoing.length === events.length) setImmediate(() => this.sendOutgoing());
  }

  private sendOutgoing(): void {
    const events = this.outgoing;
    this.outgoing = [];
    if (!this.publisher || !this.key || !this.channel || events.length === 0) return;
    const { frames, refused } = encodeFeedMessages(this.key, this.instanceId, events);
    for (const { detail } of refused) {
      this.logger.warn({ detail }, 'scan event not sent to other instances: outside the bounds of the redis scan channel');
    }
    for (const frame of frames) {
      this.publisher.publish(this.channel, frame).catch((error: Error) => {
        this.logger.warn({ error: error.message, events: events.length }, 'scan events not sent to other instances: redis unavailable');
      });
    }
  }

  /** A message from the channel. Nothing may throw out of here: it runs in ioredis's listener. */
  private receive(frame: Buffer | undefined): void {
    try {
      if (!this.key) return;
      // Its own messages (delivered here when published) are skipped before their MAC and JSON
      // are checked: a forgery that begins like them is dropped as well, which is safe.
      if (frame && isMessageFrom(frame, this.ownMessageStart)) return;
      const decoded = decodeFeedMessage(this.key, frame ?? Buffer.alloc(0));
      if (!decoded.ok) {
        this.options.onMessageRejected?.(decoded.reason);
        this.rejections.report(decoded.reason, decoded.detail);
        return;
      }
      if (decoded.message.origin === this.instanceId) return; // delivered here when published
      this.accept(decoded.message.events);
    } catch (error) {
      this.logger.error(
        { error: error instanceof Error ? error.message : String(error) },
        'failed to handle a message on the redis scan channel',
      );
    }
  }

  /** Events stored here or elsewhere: delivered in storage order, each once. */
  private accept(events: ScanEvent[]): void {
    for (const event of events) {
      const position = event.scan.streamSeq;
      if (this.delivered === undefined || position > this.delivered) this.early.set(position, event);
    }
    if (this.early.size > MAX_EARLY_EVENTS) this.early.clear(); // read back from the database instead
    this.drain();
  }

  /** Delivers the held events that continue what was delivered; reads any hole from the database. */
  private drain(): void {
    if (this.delivered === undefined) return this.catchUp();
    const next: ScanEvent[] = [];
    for (let event = this.early.get(this.delivered + 1); event; event = this.early.get(this.delivered + 1)) {
      this.early.delete(this.delivered + 1);
      this.delivered += 1;
      next.push(event);
    }
    if (next.length > 0) this.deliver(next);
    if (this.early.size > 0 && !this.holeIsOwnUnpublished()) this.readHoleUnlessFilled();
  }

  /**
   * Reads the gap before the held events from the database if it is still open after
   * HOLE_GRACE_MS (see there); a gap filled meanwhile and another opened restarts the wait.
   */
  private readHoleUnlessFilled(): void {
    const missing = (this.delivered as number) + 1;
    if (this.holeTimer && this.holeAt === missing) return;
    clearTimeout(this.holeTimer);
    this.holeAt = missing;
    this.holeTimer = setTimeout(() => {
      this.holeTimer = undefined;
      this.holeAt = undefined;
      if (this.delivered === undefined || this.early.size === 0 || this.holeIsOwnUnpublished()) return;
      if (this.delivered + 1 === missing) this.catchUp();
      else this.readHoleUnlessFilled();
    }, this.options.holeGraceMs ?? HOLE_GRACE_MS);
    this.holeTimer.unref();
  }

  /**
   * Whether the next position to deliver was committed here and is about to be published here
   * (unpublishedFrom): the database is not read for it (it would be read again and again while
   * the commit is made durable), its publish fills the hole.
   */
  private holeIsOwnUnpublished(): boolean {
    const unpublished = this.options.unpublishedFrom?.();
    return unpublished !== undefined && this.delivered !== undefined && this.delivered + 1 >= unpublished;
  }

  /**
   * Reads from the database every scan stored after what was delivered, up to the
   * database's position, and delivers it in order. One at a time; a call while one runs
   * makes it run again. A failure (the database away) is retried by the next event or check.
   */
  private catchUp(): void {
    if (this.closed) return;
    if (this.catchingUp) {
      this.catchUpAgain = true;
      return;
    }
    this.catchingUp = true;
    const { stream } = this.options;
    void (async () => {
      try {
        do {
          this.catchUpAgain = false;
          const upTo = await this.readablePosition();
          if (this.delivered === undefined) {
            // At start: what was stored before this feed existed had no subscriber here;
            // what was published to it already is read back with the rest.
            this.delivered = Math.min(upTo, ...[...this.early.keys()].map((position) => position - 1));
          }
          while (!this.closed && this.delivered < upTo) {
            const page = await stream.readAfter(this.delivered, upTo, { scope: Access.internal().scope }, STREAM_PAGE);
            // Everything up to `upTo` is committed: a position the page skips was removed
            // with its page, and will never come. What drain delivered meanwhile is dropped.
            const fresh = page.filter((event) => event.scan.streamSeq > (this.delivered as number));
            // (drain may have gone past upTo meanwhile: never move back)
            this.delivered = Math.max(this.delivered, page.length < STREAM_PAGE ? upTo : page[page.length - 1].scan.streamSeq);
            if (fresh.length > 0) this.deliver(fresh);
          }
          for (const position of this.early.keys()) if (position <= this.delivered) this.early.delete(position);
        } while (this.catchUpAgain && !this.closed);
      } catch (error) {
        this.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'could not read stored scans to fill a gap in the live feed; retrying with the next scan or check',
        );
      } finally {
        this.catchingUp = false;
      }
      if (!this.closed) this.drain();
    })();
  }

  /** The database's position, short of what this process committed and has not published yet. */
  private async readablePosition(): Promise<number> {
    const position = await this.options.stream.position();
    const unpublished = this.options.unpublishedFrom?.();
    return unpublished === undefined ? position : Math.min(position, unpublished - 1);
  }

  private deliver(events: ScanEvent[]): void {
    // A live event (the code as it was right after its scan) replaces one read back.
    for (const event of events) this.remember(event, true);
    if (this.subscribers.size === 0) return;
    const batches = new Map<Subscriber, ScanEvent[]>();
    const offer = (subscriber: Subscriber, event: ScanEvent) => {
      if (!matches(subscriber.filter, event)) return;
      const batch = batches.get(subscriber);
      if (batch) batch.push(event);
      else batches.set(subscriber, [event]);
    };
    for (const event of events) {
      for (const subscriber of this.anyRef) offer(subscriber, event);
      const ofRef = event.scan.ref === null ? undefined : this.byRef.get(event.scan.ref);
      if (ofRef) for (const subscriber of ofRef) offer(subscriber, event);
    }
    for (const [subscriber, batch] of batches) subscriber.pushBatch(batch);
  }

  private addSubscriber(subscriber: Subscriber): void {
    this.subscribers.add(subscriber);
    const { ref } = subscriber.filter;
    if (ref == null) return void this.anyRef.add(subscriber);
    const ofRef = this.byRef.get(ref);
    if (ofRef) ofRef.add(subscriber);
    else this.byRef.set(ref, new Set([subscriber]));
  }

  private removeSubscriber(subscriber: Subscriber): void {
    this.subscribers.delete(subscriber);
    const { ref } = subscriber.filter;
    if (ref == null) return void this.anyRef.delete(subscriber);
    const ofRef = this.byRef.get(ref);
    ofRef?.delete(subscriber);
    if (ofRef?.size === 0) this.byRef.delete(ref);
  }

  /** The event kept for this position, or this one, kept from now on. */
  private remember(event: ScanEvent, replace = false): ScanEvent {
    const position = event.scan.streamSeq;
    // peek: a replay reading an event does not make it younger than the live ones.
    const kept = this.recent.peek(position);
    if (kept && !replace) return kept;
    this.recent.set(position, event);
    return event;
  }

  subscribe(filter: ScanFilter, onOverflow: () => void): ScanSubscription {
    const queue: ScanEvent[] = [];
    let waiting: ((result: IteratorResult<ScanEvent>) => void) | undefined;
    let finished = false;
    const done = (): IteratorResult<ScanEvent> => ({ value: undefined, done: true });

    const finish = () => {
      finished = true;
      queue.length = 0;
      this.removeSubscriber(subscriber);
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
    this.addSubscriber(subscriber);

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

  /**
   * Every scan matching `filter` stored after position `after`, oldest first, read from
   * the database, then the live ones: no gap, no duplicate. The live subscription starts
   * first and holds what arrives during the replay; the replay reads up to the position
   * the feed had delivered by then (the database's, before the feed started), and the
   * live events from the one after it.
   */
  subscribeAfter(filter: ScanFilter, after: number, onOverflow: () => void): ScanSubscription {
    const live = this.subscribe(filter, onOverflow);
    const { stream } = this.options;
    let replay: ScanEvent[] = [];
    let replaying = true;
    let upTo: number | undefined;
    let last = after;
    let finished = false;
    const done = (): IteratorResult<ScanEvent> => ({ value: undefined, done: true });
    // Not an async generator: its return() would wait for a pending next(), and a quiet
    // subscription's next() waits for the next scan, so a closed socket would keep its
    // subscriber until then.
    const nextEvent = async (): Promise<IteratorResult<ScanEvent>> => {
      while (!finished) {
        const replayed = replay.shift();
        if (replayed) return { value: replayed, done: false };
        if (replaying) {
          // What the feed delivered is committed, and what follows reaches `live`: no database
          // round trip per subscriber, and a wall of them resuming together reads the same range.
          upTo ??= this.delivered ?? (await this.readablePosition());
          const page = await stream.readAfter(last, upTo, filter, STREAM_PAGE);
          replay = page.map((event) => this.remember(event));
          if (page.length < STREAM_PAGE) replaying = false;
          else last = page[page.length - 1].scan.streamSeq;
          continue;
        }
        const result = await live.next();
        if (result.done) return result;
        if (result.value.scan.streamSeq > Math.max(after, upTo as number)) return result;
      }
      return done();
    };
    const subscription: ScanSubscription = {
      next: () =>
        nextEvent().catch(async (error: unknown) => {
          finished = true;
          await live.return();
          throw error;
        }),
      return: async () => {
        finished = true;
        replay = [];
        await live.return();
        return done();
      },
      [Symbol.asyncIterator]: () => subscription,
    };
    return subscription;
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

  /** Bounded whatever Redis is doing (see closeRedis). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.streamCheck);
    clearTimeout(this.holeTimer);
    this.sendOutgoing();
    for (const subscriber of [...this.subscribers]) this.removeSubscriber(subscriber);
    this.recent.clear();
    await Promise.all([this.publisher, this.listener].map((client) => client && closeRedis(client)));
  }
}
