import { createHmac } from 'node:crypto';
import type { CodeRecord } from '../../src/codes/code.wire';
import { codeRecordFixture } from '../support/code-record';
import { createLogger } from '../../src/logging/logger';
import {
  decodeFeedMessage,
  deriveFeedKey,
  encodeFeedMessage,
  encodeFeedMessages,
  MAX_FEED_MESSAGE_BYTES,
  MAX_FEED_MESSAGE_EVENTS,
  RejectionLog,
  type FeedDecoding,
  type ScanEvent,
} from '../../src/scans/scan-feed';
import { ScanKind } from '../../src/scans/scan.entity';

const KEY = deriveFeedKey({ appSecret: 'test-app-secret' }) as Buffer;
const ORIGIN = '3f0c6a52-8d5e-4f3b-9a57-0c1d2e3f4a5b';

const codeRecord = codeRecordFixture;

let sequence = 0;
function scanEvent(overrides: Partial<ScanEvent['scan']> = {}, code: CodeRecord | null = codeRecord()): ScanEvent {
  sequence++;
  return {
    scan: {
      id: `0000019a2b3c4d5e-${String(sequence).padStart(19, '0')}`,
      pageId: '100000000000000',
      ref: 'table-7',
      kind: ScanKind.REFERRAL,
      source: 'SHORTLINK',
      occurredAt: 1_700_000_600_000 + sequence,
      receivedAt: 1_700_000_601_000 + sequence,
      streamSeq: sequence,
      ...overrides,
    },
    code,
  };
}

/** A frame signed with KEY around exactly `json`, whatever it holds. */
function signed(json: string, key = KEY): Buffer {
  const mac = createHmac('sha256', key).update(json).digest('hex');
  return Buffer.from(`mcg1.${mac}.${json}`);
}

function rejection(decoding: FeedDecoding): { reason: string; detail: string } {
  if (decoding.ok) throw new Error(`expected a rejection, got ${JSON.stringify(decoding.message).slice(0, 200)}`);
  return { reason: decoding.reason, detail: decoding.detail };
}

describe('deriveFeedKey', () => {
  it('is HMAC-SHA256(APP_SECRET, the channel label): the same on every instance with the same secret', () => {
    const expected = createHmac('sha256', 'shared-secret').update('messenger-code-gateway/redis-scan-feed/v1').digest();
    expect(deriveFeedKey({ appSecret: 'shared-secret' })).toEqual(expected);
    expect(deriveFeedKey({ appSecret: 'shared-secret', psidHashKey: 'another' })).toEqual(expected);
  });

  it('falls back to PSID_HASH_KEY when APP_SECRET is unset', () => {
    const expected = createHmac('sha256', 'psid-key').update('messenger-code-gateway/redis-scan-feed/v1').digest();
    expect(deriveFeedKey({ psidHashKey: 'psid-key' })).toEqual(expected);
    expect(deriveFeedKey({ appSecret: '', psidHashKey: 'psid-key' })).toEqual(expected);
  });

  it('is undefined with neither secret: the channel cannot be authenticated', () => {
    expect(deriveFeedKey({})).toBeUndefined();
    expect(deriveFeedKey({ appSecret: undefined, psidHashKey: undefined })).toBeUndefined();
    expect(deriveFeedKey({ appSecret: '', psidHashKey: '' })).toBeUndefined();
  });

  it('differs per secret, and is neither the secret nor the webhook key', () => {
    const a = deriveFeedKey({ appSecret: 'secret-a' }) as Buffer;
    const b = deriveFeedKey({ appSecret: 'secret-b' }) as Buffer;
    expect(a).toHaveLength(32);
    expect(a.equals(b)).toBe(false);
    expect(a.equals(Buffer.from('secret-a'))).toBe(false);
  });
});

describe('encodeFeedMessage / decodeFeedMessage', () => {
  it('round-trips a batch, static codes and orphan scans included', () => {
    const events = [
      scanEvent(),
      scanEvent({ ref: null, source: null }, codeRecord({ ref: null, label: null, lastScannedAt: null })),
      scanEvent({}, null),
    ];
    const decoded = decodeFeedMessage(KEY, encodeFeedMessage(KEY, { origin: ORIGIN, events }));
    expect(decoded).toEqual({ ok: true, message: { origin: ORIGIN, events } });
  });

  it('signs exactly the JSON bytes after the header, as hex HMAC-SHA256', () => {
    const message = { origin: ORIGIN, events: [scanEvent()] };
    const frame = encodeFeedMessage(KEY, message).toString('utf8');
    const json = JSON.stringify(message);
    expect(frame).toBe(`mcg1.${createHmac('sha256', KEY).update(json).digest('hex')}.${json}`);
  });

  it('keeps non-ASCII text intact (the MAC is over the UTF-8 bytes)', () => {
    const events = [scanEvent({}, codeRecord({ label: 'Tisch 7 · Terrasse ☀️' }))];
    expect(decodeFeedMessage(KEY, encodeFeedMessage(KEY, { origin: ORIGIN, events }))).toEqual({
      ok: true,
      message: { origin: ORIGIN, events },
    });
  });

  it('returns fresh objects holding only the known fields', () => {
    const event = scanEvent();
    const json = JSON.stringify({
      origin: ORIGIN,
      extra: 1,
      events: [{ ...event, more: true, scan: { ...event.scan, senderHash: 'x' }, code: { ...event.code, secret: 'y' } }],
    });
    const decoded = decodeFeedMessage(KEY, signed(json));
    expect(decoded).toEqual({ ok: true, message: { origin: ORIGIN, events: [event] } });
  });

  describe('unauthenticated: dropped before its JSON is read', () => {
    const message = { origin: ORIGIN, events: [scanEvent()] };
    const json = JSON.stringify(message);

    it.each([
      ['the message that crashed every instance', '{"events":[{}]}'],
      ['a well-formed forged event without a MAC (the old wire format)', json],
      ['garbage', '\u0000\u0001not json at all'],
      ['an empty message', ''],
      ['the prefix alone', 'mcg1.'],
    ])('%s', (_name, text) => {
      expect(rejection(decodeFeedMessage(KEY, Buffer.from(text)))).toEqual({ reason: 'unauthenticated', detail: 'not signed' });
    });

    it('a MAC made with another key (another APP_SECRET)', () => {
      const other = deriveFeedKey({ appSecret: 'not-the-shared-secret' }) as Buffer;
      expect(rejection(decodeFeedMessage(KEY, encodeFeedMessage(other, message)))).toEqual({
        reason: 'unauthenticated',
        detail: 'bad signature',
      });
    });

    it('a MAC over other bytes (one byte of the JSON changed)', () => {
      const frame = encodeFeedMessage(KEY, message);
      const tampered = Buffer.from(frame.toString('latin1').replace('"REFERRAL"', '"POSTBACK"'), 'latin1');
      expect(tampered.equals(frame)).toBe(false);
      expect(rejection(decodeFeedMessage(KEY, tampered)).reason).toBe('unauthenticated');
    });

    it.each([
      ['zeros', () => `mcg1.${'0'.repeat(64)}.${json}`],
      ['upper-case hex of the right MAC', () => `mcg1.${createHmac('sha256', KEY).update(json).digest('hex').toUpperCase()}.${json}`],
      ['a MAC one hex digit short', () => `mcg1.${createHmac('sha256', KEY).update(json).digest('hex').slice(1)}.${json}`],
      ['non-hex characters', () => `mcg1.${'zz'.repeat(32)}.${json}`],
      ['another format version', () => `mcg2.${createHmac('sha256', KEY).update(json).digest('hex')}.${json}`],
      ['no separator after the MAC', () => `mcg1.${createHmac('sha256', KEY).update(json).digest('hex')}${json}`],
    ])('%s', (_name, frame) => {
      expect(rejection(decodeFeedMessage(KEY, Buffer.from(frame()))).reason).toBe('unauthenticated');
    });
  });

  describe('too large: refused on its size alone', () => {
    it('a frame over the bound, even correctly signed', () => {
      const frame = encodeFeedMessage(KEY, { origin: ORIGIN, events: [scanEvent()] });
      expect(decodeFeedMessage(KEY, frame, frame.length).ok).toBe(true);
      expect(rejection(decodeFeedMessage(KEY, frame, frame.length - 1))).toEqual({
        reason: 'too_large',
        detail: `${frame.length} bytes, more than ${frame.length - 1}`,
      });
    });

    it('the default bound is a few MB', () => {
      expect(MAX_FEED_MESSAGE_BYTES).toBe(4 * 1024 * 1024);
      const huge = Buffer.alloc(MAX_FEED_MESSAGE_BYTES + 1, 'x');
      expect(rejection(decodeFeedMessage(KEY, huge)).reason).toBe('too_large');
    });
  });

  describe('malformed: signed, but not a batch of scan events; dropped whole', () => {
    it.each([
      ['not JSON', '{"origin":', 'not JSON'],
      ['the message that crashed every instance, signed', '{"events":[{}]}', 'origin: expected a string of 1 to 64 characters'],
      ['an event without a scan', `{"origin":"${ORIGIN}","events":[{}]}`, 'events[0].scan: expected an object'],
      ['null', 'null', 'message: expected an object'],
      ['an array', '[]', 'message: expected an object'],
      ['no events', `{"origin":"${ORIGIN}"}`, `events: expected an array of 1 to ${MAX_FEED_MESSAGE_EVENTS} events`],
      [
        'events not an array',
        `{"origin":"${ORIGIN}","events":{"0":{}}}`,
        `events: expected an array of 1 to ${MAX_FEED_MESSAGE_EVENTS} events`,
      ],
      ['an empty batch', `{"origin":"${ORIGIN}","events":[]}`, `events: expected an array of 1 to ${MAX_FEED_MESSAGE_EVENTS} events`],
      ['a number origin', `{"origin":7,"events":[]}`, 'origin: expected a string of 1 to 64 characters'],
    ])('%s', (_name, json, detail) => {
      expect(rejection(decodeFeedMessage(KEY, signed(json)))).toEqual({ reason: 'malformed', detail });
    });

    it('more events than a message may carry', () => {
      const events = Array.from({ length: MAX_FEED_MESSAGE_EVENTS + 1 }, () => scanEvent());
      expect(rejection(decodeFeedMessage(KEY, signed(JSON.stringify({ origin: ORIGIN, events }))))).toEqual({
        reason: 'malformed',
        detail: `events: expected an array of 1 to ${MAX_FEED_MESSAGE_EVENTS} events`,
      });
    });

    /** An event as parsed JSON: its two parts open to any change. */
    type LooseEvent = Record<string, Record<string, unknown>>;
    type Mutation = [string, (event: LooseEvent) => void, string];
    const mutations: Mutation[] = [
      ['scan.id missing', (e) => delete e.scan.id, 'scan.id'],
      ['scan.id empty', (e) => (e.scan.id = ''), 'scan.id'],
      ['scan.id too long', (e) => (e.scan.id = 'x'.repeat(65)), 'scan.id'],
      ['scan.pageId a number', (e) => (e.scan.pageId = 100000000000000), 'scan.pageId'],
      ['scan.pageId missing', (e) => delete e.scan.pageId, 'scan.pageId'],
      ['scan.pageId too long', (e) => (e.scan.pageId = '1'.repeat(65)), 'scan.pageId'],
      ['scan.ref missing (undefined is not null)', (e) => delete e.scan.ref, 'scan.ref'],
      ['scan.ref a number', (e) => (e.scan.ref = 12), 'scan.ref'],
      ['scan.ref too long', (e) => (e.scan.ref = 'r'.repeat(4097)), 'scan.ref'],
      ['scan.kind unknown', (e) => (e.scan.kind = 'DELETE'), 'scan.kind'],
      ['scan.source an object', (e) => (e.scan.source = {}), 'scan.source'],
      ['scan.source too long', (e) => (e.scan.source = 's'.repeat(257)), 'scan.source'],
      ['scan.occurredAt a string', (e) => (e.scan.occurredAt = '2026-01-01T00:00:00Z'), 'scan.occurredAt'],
      ['scan.occurredAt fractional', (e) => (e.scan.occurredAt = 1.5), 'scan.occurredAt'],
      ['scan.occurredAt negative', (e) => (e.scan.occurredAt = -1), 'scan.occurredAt'],
      ['scan.occurredAt beyond any Date', (e) => (e.scan.occurredAt = 8.64e15 + 1), 'scan.occurredAt'],
      ['scan.receivedAt null', (e) => (e.scan.receivedAt = null), 'scan.receivedAt'],
      ['scan an array', (e) => (e.scan = [] as never), 'scan'],
      ['code missing (undefined is not null)', (e) => delete e.code, 'code'],
      ['code a string', (e) => (e.code = 'code-1' as never), 'code'],
      ['code.id missing', (e) => delete e.code.id, 'code.id'],
      ['code.pageId null', (e) => (e.code.pageId = null), 'code.pageId'],
      ['code.type unknown', (e) => (e.code.type = 'DYNAMIC'), 'code.type'],
      ['code.ref missing', (e) => delete e.code.ref, 'code.ref'],
      ['code.label too long', (e) => (e.code.label = 'l'.repeat(1001)), 'code.label'],
      ['code.provider unknown', (e) => (e.code.provider = 'OTHER'), 'code.provider'],
      ['code.imageSize a string', (e) => (e.code.imageSize = '1000'), 'code.imageSize'],
      ['code.imageId missing', (e) => delete e.code.imageId, 'code.imageId'],
      ['code.createdAt missing', (e) => delete e.code.createdAt, 'code.createdAt'],
      ['code.scanCount negative', (e) => (e.code.scanCount = -3), 'code.scanCount'],
      ['code.scanCount unsafe', (e) => (e.code.scanCount = 2 ** 53), 'code.scanCount'],
      ['code.lastScannedAt missing', (e) => delete e.code.lastScannedAt, 'code.lastScannedAt'],
    ];
    it.each(mutations)('%s', (_name, mutate, field) => {
      const event = JSON.parse(JSON.stringify(scanEvent())) as LooseEvent;
      mutate(event);
      const result = rejection(decodeFeedMessage(KEY, signed(JSON.stringify({ origin: ORIGIN, events: [event] }))));
      expect(result.reason).toBe('malformed');
      expect(result.detail.startsWith(`events[0].${field}: expected `)).toBe(true);
    });

    it('one bad event drops the whole message, its valid neighbours included', () => {
      const events: unknown[] = [scanEvent(), scanEvent(), { scan: { ...scanEvent().scan, pageId: null }, code: null }, scanEvent()];
      expect(rejection(decodeFeedMessage(KEY, signed(JSON.stringify({ origin: ORIGIN, events }))))).toEqual({
        reason: 'malformed',
        detail: 'events[2].scan.pageId: expected a string of 1 to 64 characters',
      });
    });

    it('a detail never quotes the message', () => {
      const event = scanEvent({ kind: 'EVIL-<script>' as ScanKind });
      const { detail } = rejection(decodeFeedMessage(KEY, signed(JSON.stringify({ origin: ORIGIN, events: [event] }))));
      expect(detail).not.toContain('EVIL');
    });

    it('values at the bounds are accepted', () => {
      const event = scanEvent(
        { id: 'i'.repeat(64), pageId: '9'.repeat(64), ref: 'r'.repeat(4096), source: 's'.repeat(256), occurredAt: 0, receivedAt: 8.64e15 },
        codeRecord({ ref: '', label: 'l'.repeat(1000), scanCount: Number.MAX_SAFE_INTEGER, lastScannedAt: null }),
      );
      expect(decodeFeedMessage(KEY, encodeFeedMessage(KEY, { origin: ORIGIN, events: [event] }))).toEqual({
        ok: true,
        message: { origin: ORIGIN, events: [event] },
      });
    });
  });
});

describe('encodeFeedMessages (what publish sends)', () => {
  const decodeAll = (frames: Buffer[], maxBytes?: number) =>
    frames.map((frame) => {
      const decoded = decodeFeedMessage(KEY, frame, maxBytes);
      if (!decoded.ok) throw new Error(`a frame the receivers refuse: ${decoded.reason} ${decoded.detail}`);
      return decoded.message;
    });

  it('one frame for an ordinary batch', () => {
    const events = [scanEvent(), scanEvent()];
    const { frames, refused } = encodeFeedMessages(KEY, ORIGIN, events);
    expect(refused).toEqual([]);
    expect(decodeAll(frames)).toEqual([{ origin: ORIGIN, events }]);
  });

  it('splits a batch larger than a message may carry, in order', () => {
    const events = Array.from({ length: 2 * MAX_FEED_MESSAGE_EVENTS + 5 }, () => scanEvent());
    const { frames, refused } = encodeFeedMessages(KEY, ORIGIN, events);
    expect(refused).toEqual([]);
    const messages = decodeAll(frames);
    expect(messages.map((message) => message.events.length)).toEqual([MAX_FEED_MESSAGE_EVENTS, MAX_FEED_MESSAGE_EVENTS, 5]);
    expect(messages.flatMap((message) => message.events)).toEqual(events);
  });

  it('splits a batch whose frame would exceed the byte bound, in order, each frame within it', () => {
    const events = Array.from({ length: 40 }, () => scanEvent({ ref: 'r'.repeat(1000) }));
    const maxBytes = 8 * 1024;
    const { frames, refused } = encodeFeedMessages(KEY, ORIGIN, events, maxBytes);
    expect(refused).toEqual([]);
    expect(frames.length).toBeGreaterThan(1);
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(maxBytes);
    expect(decodeAll(frames, maxBytes).flatMap((message) => message.events)).toEqual(events);
  });

  it('leaves out the events every receiver would refuse, and says which', () => {
    const good = [scanEvent(), scanEvent()];
    const bad = scanEvent({ ref: 'r'.repeat(5000) });
    const { frames, refused } = encodeFeedMessages(KEY, ORIGIN, [good[0], bad, good[1]]);
    expect(refused).toEqual([{ index: 1, detail: 'event.scan.ref: expected a string of 0 to 4096 characters' }]);
    expect(decodeAll(frames)).toEqual([{ origin: ORIGIN, events: good }]);
  });

  it('an event too large for a frame on its own is refused, not sent', () => {
    const small = scanEvent();
    const large = scanEvent({ ref: 'r'.repeat(4000) });
    const { frames, refused } = encodeFeedMessages(KEY, ORIGIN, [small, large], 2048);
    expect(refused).toEqual([{ index: 1, detail: 'event: larger than 2048 bytes on its own' }]);
    expect(decodeAll(frames, 2048)).toEqual([{ origin: ORIGIN, events: [small] }]);
  });
});

describe('RejectionLog', () => {
  function capture() {
    const lines: string[] = [];
    const logger = createLogger({ level: 'warn', destination: { write: (line: string) => void lines.push(line) } });
    return { logger, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
  }

  it('logs the first drop at once, then at most one line per interval saying how many it did not log', () => {
    const { logger, records } = capture();
    let now = 1_000_000;
    const log = new RejectionLog(logger, 60_000, () => now);
    log.report('unauthenticated', 'not signed');
    for (let i = 0; i < 10_000; i++) log.report('malformed', 'not JSON');
    expect(records()).toHaveLength(1);
    expect(records()[0]).toMatchObject({ level: 'warn', reason: 'unauthenticated', detail: 'not signed', droppedSincePreviousLine: 0 });
    expect(records()[0].message).toContain('gateway_feed_messages_rejected_total');

    now += 59_999;
    log.report('too_large', '5000000 bytes, more than 4194304');
    expect(records()).toHaveLength(1);
    now += 1;
    log.report('too_large', '5000000 bytes, more than 4194304');
    expect(records()).toHaveLength(2);
    expect(records()[1]).toMatchObject({ reason: 'too_large', droppedSincePreviousLine: 10_001 });

    now += 60_000;
    log.report('malformed', 'not JSON');
    expect(records()[2]).toMatchObject({ reason: 'malformed', droppedSincePreviousLine: 0 });
  });
});
