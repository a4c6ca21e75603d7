import type { CodeRecord } from '../../src/codes/code.wire';
import { codeRecordFixture } from '../support/code-record';
import { Code, CodeTracking, CodeType } from '../../src/codes/code.entity';
import { CodeProviderKind } from '../../src/images/image.types';
import { createLogger } from '../../src/logging/logger';
import {
  matches,
  ScanFeed,
  scanFromEvent,
  type ScanEvent,
  type ScanFeedOptions,
  type ScanFilter,
  type StoredScanStream,
} from '../../src/scans/scan-feed';
import { Scan, ScanKind } from '../../src/scans/scan.entity';
import { eventually } from '../support/subscriptions';
import Redis from 'ioredis';
import { Access, Role } from '../../src/access';

/** A filter of a subscriber that sees every page. */
function everyPage(filter: Omit<ScanFilter, 'scope'> = {}): ScanFilter {
  return { scope: Access.internal().scope, ...filter };
}

const logger = createLogger({ level: 'silent', destination: { write: () => undefined } });

function codeRecord(overrides: Partial<CodeRecord> = {}): CodeRecord {
  return codeRecordFixture({ id: 'code-1', pageId: 'page-1', imageId: 'image-1', ...overrides });
}

let sequence = 0;
function scanEvent(overrides: Partial<ScanEvent['scan']> = {}, code: CodeRecord | null = codeRecord()): ScanEvent {
  sequence++;
  return {
    scan: {
      id: `scan-${sequence}`,
      pageId: code?.pageId ?? 'page-1',
      ref: code ? code.ref : 'orphan',
      kind: ScanKind.REFERRAL,
      source: 'MESSENGER_CODE',
      occurredAt: 1_700_000_600_000 + sequence,
      receivedAt: 1_700_000_601_000 + sequence,
      streamSeq: sequence,
      ...overrides,
    },
    code,
  };
}

/**
 * The database's side of the feed, in memory: the events "stored", by position. Positions
 * are the fixtures' sequence, so a stream made now starts where the fixtures are.
 */
class StoredEvents implements StoredScanStream {
  readonly events = new Map<number, ScanEvent>();
  private last = sequence;

  store(events: ScanEvent[]): ScanEvent[] {
    for (const event of events) {
      this.events.set(event.scan.streamSeq, event);
      this.last = Math.max(this.last, event.scan.streamSeq);
    }
    return events;
  }

  async position(): Promise<number> {
    return this.last;
  }

  async readAfter(after: number, upTo: number, filter: ScanFilter, limit: number): Promise<ScanEvent[]> {
    return [...this.events.values()]
      .filter((event) => event.scan.streamSeq > after && event.scan.streamSeq <= upTo && matches(filter, event))
      .sort((a, b) => a.scan.streamSeq - b.scan.streamSeq)
      .slice(0, limit);
  }
}

/** A started feed whose publish() first stores the events, as ScanService does. */
async function startFeed(options: Omit<ScanFeedOptions, 'stream'>, stored = new StoredEvents()): Promise<ScanFeed> {
  const feed = new ScanFeed({ ...options, stream: stored });
  await feed.start();
  const publish = feed.publish.bind(feed);
  feed.publish = (events) => publish(stored.store(events));
  return feed;
}

/** Resolves with `promise`'s value, or with 'pending' when it has not settled after the current microtasks. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe('matches', () => {
  const event = scanEvent({ pageId: 'page-1', ref: 'table-7' }, codeRecord({ id: 'code-1', pageId: 'page-1', ref: 'table-7' }));
  const orphan = scanEvent({ pageId: 'page-1', ref: 'nowhere' }, null);

  it('an empty filter (or one of nulls) matches everything', () => {
    expect(matches(everyPage(), event)).toBe(true);
    expect(matches(everyPage({ pageId: null, ref: null, codeId: null }), event)).toBe(true);
    expect(matches(everyPage(), orphan)).toBe(true);
  });

  const cases: [string, ScanFilter, boolean][] = [
    ['same page', everyPage({ pageId: 'page-1' }), true],
    ['other page', everyPage({ pageId: 'page-2' }), false],
    ['same ref', everyPage({ ref: 'table-7' }), true],
    ['other ref', everyPage({ ref: 'table-8' }), false],
    ['same code', everyPage({ codeId: 'code-1' }), true],
    ['other code', everyPage({ codeId: 'code-2' }), false],
    ['all three match', everyPage({ pageId: 'page-1', ref: 'table-7', codeId: 'code-1' }), true],
    ['page matches, ref does not', everyPage({ pageId: 'page-1', ref: 'table-8' }), false],
    ['ref matches, page does not', everyPage({ pageId: 'page-2', ref: 'table-7' }), false],
    ['page and ref match, code does not', everyPage({ pageId: 'page-1', ref: 'table-7', codeId: 'code-9' }), false],
  ];
  it.each(cases)('%s', (_name, filter, expected) => {
    expect(matches(filter, event)).toBe(expected);
  });

  it("never matches a scan outside the subscriber key's pages, whatever else the filter says", () => {
    const otherPages = Access.apiKey('key-1', Role.VIEWER, ['page-2']).scope;
    expect(matches({ scope: otherPages }, event)).toBe(false);
    expect(matches({ scope: otherPages, pageId: 'page-1', ref: 'table-7', codeId: 'code-1' }, event)).toBe(false);
    expect(matches({ scope: Access.apiKey('key-2', Role.VIEWER, ['page-2', 'page-1']).scope }, event)).toBe(true);
  });

  it('a code filter never matches an orphan scan (no code)', () => {
    expect(matches(everyPage({ codeId: 'code-1' }), orphan)).toBe(false);
    expect(matches(everyPage({ pageId: 'page-1' }), orphan)).toBe(true);
  });

  it('an empty-string filter is a real filter, not "any"', () => {
    expect(matches(everyPage({ ref: '' }), event)).toBe(false);
  });

  it('a ref filter does not match the static code (ref null)', () => {
    const staticScan = scanEvent({ ref: null }, codeRecord({ ref: null }));
    expect(matches(everyPage({ ref: 'table-7' }), staticScan)).toBe(false);
    expect(matches(everyPage({ pageId: 'page-1' }), staticScan)).toBe(true);
  });
});

async function take(subscription: { next(): Promise<IteratorResult<ScanEvent>> }, count: number): Promise<ScanEvent[]> {
  const events: ScanEvent[] = [];
  for (let i = 0; i < count; i++) events.push((await subscription.next()).value as ScanEvent);
  return events;
}

describe('ScanFeed without Redis', () => {
  let feed: ScanFeed;
  let dropped: number;
  beforeEach(async () => {
    dropped = 0;
    feed = await startFeed({ maxBacklog: 3, logger, onSubscriberDropped: () => dropped++ });
  });
  afterEach(() => feed.close());

  it('needs no Redis: redisReady is undefined', async () => {
    expect(await feed.redisReady()).toBeUndefined();
  });

  it('delivers published events in order, across batches', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    const events = [scanEvent(), scanEvent(), scanEvent(), scanEvent()];
    feed.publish(events.slice(0, 2));
    feed.publish(events.slice(2));
    const received = [];
    for (let i = 0; i < 4; i++) received.push((await subscription.next()).value);
    expect(received).toEqual(events);
  });

  it('delivers only the events that match each subscriber’s filter', async () => {
    const page1 = feed.subscribe(everyPage({ pageId: 'page-1' }), () => undefined);
    const code2 = feed.subscribe(everyPage({ codeId: 'code-2' }), () => undefined);
    const a = scanEvent({}, codeRecord({ id: 'code-1', pageId: 'page-1' }));
    const b = scanEvent({}, codeRecord({ id: 'code-2', pageId: 'page-2' }));
    const c = scanEvent({}, codeRecord({ id: 'code-3', pageId: 'page-1' }));
    feed.publish([a, b, c]);
    expect(await page1.next()).toEqual({ value: a, done: false });
    expect(await page1.next()).toEqual({ value: c, done: false });
    expect(await settled(page1.next())).toBe('pending');
    expect(await code2.next()).toEqual({ value: b, done: false });
    expect(await settled(code2.next())).toBe('pending');
  });

  it('delivers by ref: a ref’s subscribers get its scans, the others every scan their filter lets through', async () => {
    const refA = feed.subscribe(everyPage({ ref: 'a' }), () => undefined);
    const refA2 = feed.subscribe(everyPage({ ref: 'a', pageId: 'page-1' }), () => undefined);
    const refB = feed.subscribe(everyPage({ ref: 'b' }), () => undefined);
    const any = feed.subscribe(everyPage(), () => undefined);
    const a = scanEvent({}, codeRecord({ id: 'code-a', ref: 'a' }));
    const b = scanEvent({}, codeRecord({ id: 'code-b', ref: 'b' }));
    const staticCode = scanEvent({}, codeRecord({ id: 'code-static', ref: null }));
    const aElsewhere = scanEvent({ pageId: 'page-2' }, codeRecord({ id: 'code-a2', pageId: 'page-2', ref: 'a' }));
    feed.publish([a, b, staticCode, aElsewhere]);
    expect(await take(refA, 2)).toEqual([a, aElsewhere]);
    expect(await take(refA2, 1)).toEqual([a]);
    expect(await take(refB, 1)).toEqual([b]);
    expect(await take(any, 4)).toEqual([a, b, staticCode, aElsewhere]);
    const nextOfRefA2 = refA2.next();
    for (const pending of [refA.next(), nextOfRefA2, refB.next(), any.next()]) expect(await settled(pending)).toBe('pending');

    // One of a ref’s subscribers leaving does not take the others with it.
    await refA.return();
    const later = scanEvent({}, codeRecord({ id: 'code-a', ref: 'a' }));
    feed.publish([later]);
    expect(await nextOfRefA2).toEqual({ value: later, done: false });
    expect(feed.subscriberCount).toBe(3);
  });

  it('publishing an empty batch delivers nothing', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    feed.publish([]);
    expect(await settled(subscription.next())).toBe('pending');
  });

  it('a pending next() resolves when an event arrives', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    const next = subscription.next();
    expect(await settled(next)).toBe('pending');
    const event = scanEvent();
    feed.publish([event]);
    expect(await next).toEqual({ value: event, done: false });
  });

  it('a pending next() is not resolved by an event its filter excludes', async () => {
    const subscription = feed.subscribe(everyPage({ pageId: 'page-9' }), () => undefined);
    const next = subscription.next();
    feed.publish([scanEvent()]);
    expect(await settled(next)).toBe('pending');
    const wanted = scanEvent({}, codeRecord({ pageId: 'page-9' }));
    feed.publish([wanted]);
    expect(await next).toEqual({ value: wanted, done: false });
  });

  it('is an async iterable (for await)', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    const events = [scanEvent(), scanEvent()];
    feed.publish(events);
    const received: ScanEvent[] = [];
    for await (const event of subscription) {
      received.push(event);
      if (received.length === 2) break;
    }
    expect(received).toEqual(events);
    expect(feed.subscriberCount).toBe(0);
  });

  it('counts subscribers; return() releases one, ends its iterator and stops its deliveries', async () => {
    const a = feed.subscribe(everyPage(), () => undefined);
    const b = feed.subscribe(everyPage(), () => undefined);
    expect(feed.subscriberCount).toBe(2);
    const pending = a.next();
    expect(await a.return()).toEqual({ value: undefined, done: true });
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(feed.subscriberCount).toBe(1);
    const event = scanEvent();
    feed.publish([event]);
    expect(await a.next()).toEqual({ value: undefined, done: true });
    expect(await b.next()).toEqual({ value: event, done: false });
    expect(dropped).toBe(0);
  });

  it('return() drops events still queued', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    feed.publish([scanEvent(), scanEvent()]);
    await subscription.return();
    expect(await subscription.next()).toEqual({ value: undefined, done: true });
  });

  describe('backlog', () => {
    it('cuts off a subscriber whose queue already holds maxBacklog events when a new batch comes', async () => {
      const onOverflow = jest.fn();
      const slow = feed.subscribe(everyPage(), onOverflow);
      const fast = feed.subscribe(everyPage(), () => undefined);
      const drain = async () => {
        for (let i = 0; i < 3; i++) await fast.next();
      };
      feed.publish([scanEvent(), scanEvent(), scanEvent()]); // slow now holds 3 = maxBacklog
      expect(onOverflow).not.toHaveBeenCalled();
      expect(feed.subscriberCount).toBe(2);
      await drain();
      feed.publish([scanEvent()]);
      expect(onOverflow).toHaveBeenCalledTimes(1);
      expect(dropped).toBe(1);
      expect(feed.subscriberCount).toBe(1);
      // Cut off: the queued events are discarded and the iterator ends.
      expect(await slow.next()).toEqual({ value: undefined, done: true });
      // The other subscriber, which keeps up, is not affected; later batches do not call onOverflow again.
      expect((await fast.next()).done).toBe(false);
      feed.publish([scanEvent()]);
      expect(await fast.next()).toMatchObject({ done: false });
      expect(onOverflow).toHaveBeenCalledTimes(1);
      expect(dropped).toBe(1);
    });

    it('a pending next() ends when its subscriber is cut off', async () => {
      // A waiting next() means an empty queue, so only a bound of 0 cuts such a subscriber off.
      const strict = await startFeed({ maxBacklog: 0, logger });
      const onOverflow = jest.fn();
      const subscription = strict.subscribe(everyPage(), onOverflow);
      const pending = subscription.next();
      strict.publish([scanEvent()]);
      expect(await pending).toEqual({ value: undefined, done: true });
      expect(onOverflow).toHaveBeenCalledTimes(1);
      expect(strict.subscriberCount).toBe(0);
      await strict.close();
    });

    it('one batch larger than maxBacklog delivered to an empty queue is not a reason to cut it off', async () => {
      const onOverflow = jest.fn();
      const subscription = feed.subscribe(everyPage(), onOverflow);
      const batch = Array.from({ length: 10 }, () => scanEvent());
      feed.publish(batch);
      expect(onOverflow).not.toHaveBeenCalled();
      expect(dropped).toBe(0);
      expect(feed.subscriberCount).toBe(1);
      const received = [];
      for (let i = 0; i < 10; i++) received.push((await subscription.next()).value);
      expect(received).toEqual(batch);
    });

    it('a subscriber that keeps up is never cut off, however many events pass', async () => {
      const onOverflow = jest.fn();
      const subscription = feed.subscribe(everyPage(), onOverflow);
      for (let i = 0; i < 50; i++) {
        feed.publish([scanEvent(), scanEvent()]);
        await subscription.next();
        await subscription.next();
      }
      expect(onOverflow).not.toHaveBeenCalled();
      expect(feed.subscriberCount).toBe(1);
    });

    it('a queue just below the bound still takes a batch', () => {
      const onOverflow = jest.fn();
      feed.subscribe(everyPage(), onOverflow);
      feed.publish([scanEvent(), scanEvent()]); // 2 < 3
      feed.publish([scanEvent(), scanEvent(), scanEvent()]); // judged at 2: kept, now 5
      expect(onOverflow).not.toHaveBeenCalled();
      feed.publish([scanEvent()]); // judged at 5: cut off
      expect(onOverflow).toHaveBeenCalledTimes(1);
    });

    it('events a subscriber’s filter excludes do not count towards its backlog', () => {
      const onOverflow = jest.fn();
      feed.subscribe(everyPage({ pageId: 'page-quiet' }), onOverflow);
      for (let i = 0; i < 10; i++) feed.publish([scanEvent()]);
      expect(onOverflow).not.toHaveBeenCalled();
      expect(feed.subscriberCount).toBe(1);
    });

    it('works without an onSubscriberDropped option', async () => {
      const plain = await startFeed({ maxBacklog: 1, logger });
      const onOverflow = jest.fn();
      const subscription = plain.subscribe(everyPage(), onOverflow);
      plain.publish([scanEvent()]);
      plain.publish([scanEvent()]);
      expect(onOverflow).toHaveBeenCalledTimes(1);
      expect(plain.subscriberCount).toBe(0);
      expect(await subscription.next()).toEqual({ value: undefined, done: true });
      await plain.close();
    });
  });

  it('close() releases every subscriber', async () => {
    feed.subscribe(everyPage(), () => undefined);
    feed.subscribe(everyPage({ pageId: 'x' }), () => undefined);
    await feed.close();
    expect(feed.subscriberCount).toBe(0);
  });
});

describe('scanFromEvent', () => {
  it('maps epoch milliseconds to Dates and the code record to a Code entity with Dates', () => {
    const event = scanEvent(
      {
        id: 'scan-x',
        pageId: 'page-1',
        ref: 'table-7',
        kind: ScanKind.POSTBACK,
        source: null,
        occurredAt: 1_700_000_600_000,
        receivedAt: 1_700_000_601_000,
      },
      codeRecord(),
    );
    const scan = scanFromEvent(event);
    expect(scan).toBeInstanceOf(Scan);
    expect(scan).toMatchObject({ id: 'scan-x', pageId: 'page-1', ref: 'table-7', kind: ScanKind.POSTBACK, source: null });
    expect(scan.occurredAt).toEqual(new Date(1_700_000_600_000));
    expect(scan.receivedAt).toEqual(new Date(1_700_000_601_000));
    expect(scan.codeAfterScan).toBeInstanceOf(Code);
    expect(scan.codeAfterScan).toEqual(
      Object.assign(new Code(), {
        id: 'code-1',
        pageId: 'page-1',
        type: CodeType.STANDARD,
        ref: 'table-7',
        label: 'Table 7',
        provider: CodeProviderKind.LOCAL,
        imageSize: 1000,
        imageId: 'image-1',
        createdAt: new Date(1_700_000_000_000),
        scanCount: 3,
        lastScannedAt: new Date(1_700_000_500_000),
        tracking: CodeTracking.DIRECT,
        slug: null,
        visitCount: 0,
      }),
    );
  });

  it('an orphan scan has codeAfterScan null (not undefined: it is known to have no code)', () => {
    const scan = scanFromEvent(scanEvent({}, null));
    expect(scan.codeAfterScan).toBeNull();
  });

  it('a code never scanned before keeps lastScannedAt null', () => {
    expect(scanFromEvent(scanEvent({}, codeRecord({ lastScannedAt: null }))).codeAfterScan?.lastScannedAt).toBeNull();
  });

  it('does not share or change the event (events are shared by all subscribers)', () => {
    const event = scanEvent();
    const copy = JSON.parse(JSON.stringify(event));
    const scan = scanFromEvent(event);
    expect(event).toEqual(copy);
    expect(scan).not.toBe(event.scan);
  });

  it('an event that went through JSON (Redis) maps the same', () => {
    const event = scanEvent();
    expect(scanFromEvent(JSON.parse(JSON.stringify(event)))).toEqual(scanFromEvent(event));
  });
});

describe('ScanFeed in storage order', () => {
  let stored: StoredEvents;
  let feed: ScanFeed;
  beforeEach(async () => {
    stored = new StoredEvents();
    feed = new ScanFeed({ maxBacklog: 1000, logger, stream: stored });
    await feed.start();
  });
  afterEach(() => feed.close());

  const seqs = (events: (ScanEvent | undefined)[]) => events.map((event) => event?.scan.streamSeq);

  it('a batch that overtakes an earlier one waits for it; the earlier one is then delivered first', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    const [a, b, c, d] = [scanEvent(), scanEvent(), scanEvent(), scanEvent()];
    stored.store([a, b, c, d]);
    feed.publish([c, d]); // arrives first, from another instance
    feed.publish([a, b]);
    expect(seqs(await take(subscription, 4))).toEqual(seqs([a, b, c, d]));
    expect(await settled(subscription.next())).toBe('pending');
  });

  it('a hole that never arrives (Redis lost it) is read from the database, in order, once', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    const [a, b, c] = [scanEvent(), scanEvent(), scanEvent()];
    stored.store([a, b, c]);
    feed.publish([c]); // a and b were lost on the channel
    expect(seqs(await take(subscription, 3))).toEqual(seqs([a, b, c]));
    feed.publish([a, b]); // arriving late: already delivered, dropped
    expect(await settled(subscription.next())).toBe('pending');
  });

  it('a position removed with its page (never to come) does not stop the feed', async () => {
    const subscription = feed.subscribe(everyPage(), () => undefined);
    // The first was stored, then deleted with its page: only the second is in the database.
    const [, kept] = [scanEvent(), scanEvent()];
    stored.store([kept]);
    feed.publish([kept]);
    expect(seqs(await take(subscription, 1))).toEqual(seqs([kept]));
  });

  it('scans stored elsewhere and never published here reach subscribers through the periodic check', async () => {
    const checked = new ScanFeed({ maxBacklog: 1000, logger, stream: stored, streamCheckIntervalMs: 20 });
    await checked.start();
    const subscription = checked.subscribe(everyPage(), () => undefined);
    const events = stored.store([scanEvent(), scanEvent()]);
    expect(seqs(await take(subscription, 2))).toEqual(seqs(events));
    await checked.close();
  });

  it('subscribeAfter replays what was stored after the position, then continues live, without gap or duplicate', async () => {
    const before = stored.store([scanEvent(), scanEvent()]);
    feed.publish(before);
    const missed = stored.store([scanEvent(), scanEvent(), scanEvent()]);
    feed.publish(missed);
    const resumed = feed.subscribeAfter(everyPage(), before[1].scan.streamSeq, () => undefined);
    const live = stored.store([scanEvent()]);
    feed.publish(live);
    expect(seqs(await take(resumed, 4))).toEqual(seqs([...missed, ...live]));
    expect(await settled(resumed.next())).toBe('pending');
  });

  it('subscribeAfter narrows the replay by its filter', async () => {
    const mine = scanEvent({}, codeRecord({ id: 'code-7', pageId: 'page-7' }));
    const other = scanEvent({}, codeRecord({ id: 'code-8', pageId: 'page-8' }));
    feed.publish(stored.store([mine, other]));
    const resumed = feed.subscribeAfter(everyPage({ pageId: 'page-7' }), mine.scan.streamSeq - 1, () => undefined);
    expect(seqs(await take(resumed, 1))).toEqual(seqs([mine]));
    expect(await settled(resumed.next())).toBe('pending');
  });

  it('subscribers replaying the same scans get the same event objects (so they share one execution each)', async () => {
    const events = stored.store([scanEvent(), scanEvent(), scanEvent()]);
    // Stored elsewhere and read back, never published here.
    const first = feed.subscribeAfter(everyPage(), 0, () => undefined);
    const second = feed.subscribeAfter(everyPage({ pageId: 'page-1' }), 0, () => undefined);
    const replayedByFirst = await take(first, 3);
    const replayedBySecond = await take(second, 3);
    expect(seqs(replayedByFirst)).toEqual(seqs(events));
    replayedBySecond.forEach((event, index) => expect(event).toBe(replayedByFirst[index]));
  });

  it('a scan delivered live is what a later replay of its position gets (the code as it was right after it)', async () => {
    const [event] = stored.store([scanEvent()]);
    const live = { ...event, code: { ...(event.code as CodeRecord), scanCount: 1 } };
    feed.publish([live]);
    const resumed = feed.subscribeAfter(everyPage(), 0, () => undefined);
    expect((await resumed.next()).value).toBe(live);
  });

  it('subscribeAfter from a feed behind the database: the scans it has not delivered yet arrive live, in order, once', async () => {
    const delivered = stored.store([scanEvent()]);
    feed.publish(delivered);
    // Stored (here or elsewhere) but not yet delivered by this feed when the subscriber resumes.
    const pending = stored.store([scanEvent(), scanEvent()]);
    const resumed = feed.subscribeAfter(everyPage(), 0, () => undefined);
    expect(seqs(await take(resumed, 1))).toEqual(seqs(delivered));
    const next = stored.store([scanEvent()]);
    feed.publish(next); // the hole before it is read from the database
    expect(seqs(await take(resumed, 3))).toEqual(seqs([...pending, ...next]));
    expect(await settled(resumed.next())).toBe('pending');
  });

  it('reads no further than what this process committed and has not published yet, which arrives as published', async () => {
    let unpublishedFrom: number | undefined;
    const checked = new ScanFeed({
      maxBacklog: 1000,
      logger,
      stream: stored,
      streamCheckIntervalMs: 5,
      unpublishedFrom: () => unpublishedFrom,
    });
    await checked.start();
    try {
      const subscription = checked.subscribe(everyPage(), () => undefined);
      const [elsewhere] = stored.store([scanEvent()]);
      // Committed here, being made durable: in the database, not yet handed to its request.
      const [mine] = stored.store([scanEvent()]);
      unpublishedFrom = mine.scan.streamSeq;
      expect(seqs(await take(subscription, 1))).toEqual(seqs([elsewhere]));
      // Several checks later, still held back.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const next = subscription.next();
      expect(await settled(next)).toBe('pending');
      const published = { ...mine, code: { ...(mine.code as CodeRecord), scanCount: 1 } };
      checked.publish([published]);
      unpublishedFrom = undefined;
      expect((await next).value).toBe(published);
    } finally {
      await checked.close();
    }
  });

  it('waits for its own unpublished scans when another instance’s later ones arrive first, without reading the database in a loop', async () => {
    let positionReads = 0;
    const counting = new (class extends StoredEvents {
      override async position(): Promise<number> {
        // A feed that kept reading would never let the event loop turn: past 100 reads it
        // waits forever here, so that the test can fail instead of hanging.
        if (++positionReads > 100) return new Promise<number>(() => undefined);
        return super.position();
      }
    })();
    let unpublishedFrom: number | undefined;
    const waiting = new ScanFeed({ maxBacklog: 1000, logger, stream: counting, unpublishedFrom: () => unpublishedFrom });
    await waiting.start();
    try {
      const subscription = waiting.subscribe(everyPage(), () => undefined);
      const [mine, theirs] = counting.store([scanEvent(), scanEvent()]);
      unpublishedFrom = mine.scan.streamSeq;
      waiting.publish([theirs]); // from the other instance, through Redis
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(positionReads).toBeLessThan(10);
      const next = subscription.next();
      expect(await settled(next)).toBe('pending');
      waiting.publish([mine]);
      unpublishedFrom = undefined;
      expect((await next).value).toBe(mine);
      expect((await subscription.next()).value).toBe(theirs);
    } finally {
      await waiting.close();
    }
  });

  describe('a gap in the positions received', () => {
    class CountingReads extends StoredEvents {
      reads = 0;
      override async readAfter(after: number, upTo: number, filter: ScanFilter, limit: number): Promise<ScanEvent[]> {
        this.reads += 1;
        return super.readAfter(after, upTo, filter, limit);
      }
    }

    /** A started feed on a counting stream that waits `holeGraceMs` before reading a gap; closed after `work`. */
    async function withGrace(holeGraceMs: number, work: (feed: ScanFeed, stream: CountingReads) => Promise<void>): Promise<void> {
      const counting = new CountingReads();
      const graced = new ScanFeed({ maxBacklog: 1000, logger, stream: counting, holeGraceMs });
      await graced.start();
      try {
        await work(graced, counting);
      } finally {
        await graced.close();
      }
    }

    it('filled by its message within the grace (the other instance’s batch, a moment later) is never read from the database', () =>
      withGrace(60_000, async (graced, counting) => {
        const subscription = graced.subscribe(everyPage(), () => undefined);
        const [a, b, c] = counting.store([scanEvent(), scanEvent(), scanEvent()]);
        graced.publish([c]); // overtook a and b
        await new Promise((resolve) => setTimeout(resolve, 20));
        const first = subscription.next();
        expect(await settled(first)).toBe('pending');
        graced.publish([a, b]);
        expect((await first).value).toBe(a);
        expect(seqs(await take(subscription, 2))).toEqual(seqs([b, c]));
        expect(counting.reads).toBe(0);
      }));

    it('still open after the grace is read from the database once, and delivered in order', () =>
      withGrace(30, async (graced, counting) => {
        const subscription = graced.subscribe(everyPage(), () => undefined);
        const [a, b, c] = counting.store([scanEvent(), scanEvent(), scanEvent()]);
        graced.publish([c]); // a and b were lost on the channel
        await new Promise((resolve) => setTimeout(resolve, 5));
        expect(counting.reads).toBe(0);
        expect(seqs(await take(subscription, 3))).toEqual(seqs([a, b, c]));
        expect(counting.reads).toBe(1);
      }));

    it('filled, then another one opened, waits its own grace before it is read', () =>
      withGrace(60_000, async (graced, counting) => {
        const subscription = graced.subscribe(everyPage(), () => undefined);
        const [a, b, c, d] = counting.store([scanEvent(), scanEvent(), scanEvent(), scanEvent()]);
        graced.publish([b]);
        graced.publish([a]); // the first gap filled
        graced.publish([d]); // a second one opens before c
        expect(seqs(await take(subscription, 2))).toEqual(seqs([a, b]));
        const third = subscription.next();
        expect(await settled(third)).toBe('pending');
        graced.publish([c]);
        expect((await third).value).toBe(c);
        expect((await subscription.next()).value).toBe(d);
        expect(counting.reads).toBe(0);
      }));
  });

  it('return() ends a resumed subscription at once, even while it waits for a live scan', async () => {
    const resumed = feed.subscribeAfter(everyPage(), 0, () => undefined);
    const pending = resumed.next();
    await new Promise((resolve) => setImmediate(resolve));
    await resumed.return();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(feed.subscriberCount).toBe(0);
  });
});

const redisUrl = process.env.TEST_REDIS_URL;
if (!redisUrl) {
  test.skip('ScanFeed over Redis (skipped: TEST_REDIS_URL is not set)', () => undefined);
} else {
  describe('ScanFeed over Redis', () => {
    // A channel of this run's own: other test files publish on this Redis at the same time.
    const redis = { url: redisUrl, prefix: `scan-feed-test-${process.pid}:` };
    const CHANNEL = `${redis.prefix}scans`;
    const secrets = { appSecret: 'feed-test-secret' };

    it('sends the batches published in one turn as one message, delivered once and in order at every instance', async () => {
      const stored = new StoredEvents();
      const rejected: string[] = [];
      const onMessageRejected = (reason: string) => void rejected.push(reason);
      const sender = await startFeed({ maxBacklog: 1000, logger, redis, secrets, onMessageRejected }, stored);
      const receiver = await startFeed({ maxBacklog: 1000, logger, redis, secrets, onMessageRejected }, stored);
      const witness = new Redis(redisUrl);
      const messages: Buffer[] = [];
      // Other gateways may share this Redis: only the messages carrying these scans count.
      const carrying = (events: ScanEvent[]) => messages.filter((message) => events.some((event) => message.includes(event.scan.id)));
      try {
        await witness.subscribe(CHANNEL);
        witness.on('messageBuffer', (_channel: Buffer, message: Buffer) => void messages.push(message));
        await Promise.all([sender, receiver].map((feed) => eventually(async () => (await feed.redisReady()) === true, 10_000, 'redis')));
        // Each feed's listener subscribes on its own connection; give both a published marker to see.
        const onReceiver = receiver.subscribe(everyPage(), () => undefined);
        const onSender = sender.subscribe(everyPage(), () => undefined);
        const marker = scanEvent();
        sender.publish([marker]);
        await expect(onReceiver.next()).resolves.toEqual({ done: false, value: marker });
        await expect(onSender.next()).resolves.toEqual({ done: false, value: marker });
        await eventually(() => carrying([marker]).length === 1, 10_000, 'the marker on the channel');

        const batches = [[scanEvent(), scanEvent()], [scanEvent()], [scanEvent(), scanEvent(), scanEvent()]];
        for (const batch of batches) sender.publish(batch);
        const received: ScanEvent[] = [];
        for (let count = 0; count < 6; count += 1) received.push(((await onReceiver.next()) as IteratorResult<ScanEvent>).value);
        // All of them, in order, at the other instance; and once at the sender (delivered when published).
        expect(received.map((event) => event.scan.streamSeq)).toEqual(batches.flat().map((event) => event.scan.streamSeq));
        const atSender: ScanEvent[] = [];
        for (let count = 0; count < 6; count += 1) atSender.push(((await onSender.next()) as IteratorResult<ScanEvent>).value);
        expect(atSender).toEqual(batches.flat());
        await eventually(() => carrying(batches.flat()).length > 0, 10_000, 'the batches on the channel');
        // One message for the three batches published in one turn.
        expect(carrying(batches.flat())).toHaveLength(1);
        expect(batches.flat().every((event) => carrying([event]).length === 1)).toBe(true);
        expect(rejected).toEqual([]);
        await onReceiver.return();
        await onSender.return();
      } finally {
        witness.disconnect();
        await sender.close();
        await receiver.close();
      }
    });
  });
}
