import { MAX_SCAN_TIME_MS, type IncomingScan } from '../../src/scans/incoming-scan';
import { ScanKind } from '../../src/scans/scan-kind';
import { scanIdOf } from '../../src/scans/scan.service';

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HASH = 'a'.repeat(64);

function incoming(overrides: Partial<IncomingScan> = {}): IncomingScan {
  return {
    pageId: '1234567890',
    senderPsid: 'psid-1',
    kind: ScanKind.REFERRAL,
    ref: 'table-7',
    source: 'MESSENGER_CODE',
    occurredAt: new Date(1_700_000_000_000),
    ...overrides,
  };
}

describe('scanIdOf', () => {
  it('is shaped like a UUID of version 8', () => {
    expect(scanIdOf(incoming(), HASH)).toMatch(UUID_V8);
    expect(scanIdOf(incoming({ occurredAt: new Date(1) }), HASH)).toMatch(UUID_V8);
    expect(scanIdOf(incoming({ occurredAt: new Date(0xffffffffffff) }), HASH)).toMatch(UUID_V8);
    expect(scanIdOf(incoming({ ref: null, kind: ScanKind.POSTBACK }), HASH)).toMatch(UUID_V8);
  });

  // The time prefix has room for 12 hex digits: past MAX_SCAN_TIME_MS an id would be 38
  // characters (too long for the varchar(36) column) and no longer sort by time, so the
  // webhook parser accepts nothing later (webhook-payload.test.ts).
  it('every timestamp the webhook parser accepts gives a 36-character id', () => {
    const id = scanIdOf(incoming({ occurredAt: new Date(MAX_SCAN_TIME_MS) }), HASH);
    expect(id).toHaveLength(36);
    expect(id).toMatch(UUID_V8);
  });

  it('begins with the event time as 12 hex digits', () => {
    const time = 1_700_000_000_123;
    const hex = time.toString(16).padStart(12, '0');
    expect(
      scanIdOf(incoming({ occurredAt: new Date(time) }), HASH)
        .replace(/-/g, '')
        .slice(0, 12),
    ).toBe(hex);
  });

  it('the same event gives the same id (a redelivery is recognised)', () => {
    expect(scanIdOf(incoming(), HASH)).toBe(scanIdOf(incoming(), HASH));
    expect(scanIdOf(incoming({ occurredAt: new Date(1_700_000_000_000) }), HASH)).toBe(scanIdOf(incoming(), HASH));
  });

  it('ignores what redeliveries may not share: the PSID itself (the hash stands for it) and the source', () => {
    const id = scanIdOf(incoming(), HASH);
    expect(scanIdOf(incoming({ senderPsid: 'another-psid' }), HASH)).toBe(id);
    expect(scanIdOf(incoming({ source: 'SHORTLINK' }), HASH)).toBe(id);
    expect(scanIdOf(incoming({ source: null }), HASH)).toBe(id);
  });

  const differences: [string, Partial<IncomingScan>, string][] = [
    ['page', { pageId: '1234567891' }, HASH],
    ['sender hash', {}, 'b'.repeat(64)],
    ['timestamp (1 ms later)', { occurredAt: new Date(1_700_000_000_001) }, HASH],
    ['kind', { kind: ScanKind.POSTBACK }, HASH],
    ['ref', { ref: 'table-8' }, HASH],
    ['ref null (static code)', { ref: null }, HASH],
  ];
  it.each(differences)('a different %s gives a different id', (_name, overrides, hash) => {
    expect(scanIdOf(incoming(overrides), hash)).not.toBe(scanIdOf(incoming(), HASH));
  });

  it('fields are separated: moving characters between page and ref changes the id', () => {
    expect(scanIdOf(incoming({ pageId: 'ab', ref: 'c' }), HASH)).not.toBe(scanIdOf(incoming({ pageId: 'a', ref: 'bc' }), HASH));
  });

  it('handles the static code: ref null gives a stable id, the same as the stored empty ref', () => {
    const staticId = scanIdOf(incoming({ ref: null }), HASH);
    expect(staticId).toMatch(UUID_V8);
    expect(scanIdOf(incoming({ ref: null }), HASH)).toBe(staticId);
    // The static code is stored under '' (see refKey): an empty ref is the same (page, ref).
    expect(scanIdOf(incoming({ ref: '' }), HASH)).toBe(staticId);
  });

  it('ids sort by event time, whatever the rest of the event', () => {
    const times = [
      1, 15, 16, 255, 256, 4095, 4096, 0xffffffff, 0x100000000, 1_700_000_000_000, 1_700_000_000_001, 0xfffffffffff, 0x100000000000,
      0xffffffffffff,
    ];
    const ids = times.map((time, index) =>
      // A hash that decreases as time increases: only the time prefix can make them sort.
      scanIdOf(
        incoming({ occurredAt: new Date(time), ref: `ref-${times.length - index}` }),
        (times.length - index).toString(16).padStart(64, 'f'),
      ),
    );
    expect([...ids].sort()).toEqual(ids);
    for (let i = 1; i < ids.length; i++) expect(ids[i - 1] < ids[i]).toBe(true);
  });

  it('a later timestamp sorts after across a hex-digit boundary (0x…f → 0x…10)', () => {
    const before = scanIdOf(incoming({ occurredAt: new Date(0x18bcfe567ff) }), HASH);
    const after = scanIdOf(incoming({ occurredAt: new Date(0x18bcfe56800) }), HASH);
    expect(before < after).toBe(true);
    const short = scanIdOf(incoming({ occurredAt: new Date(0xf) }), HASH);
    const longer = scanIdOf(incoming({ occurredAt: new Date(0x10) }), HASH);
    expect(short < longer).toBe(true);
  });
});
