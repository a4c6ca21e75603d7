import { MAX_REF_BYTES, MAX_REF_LENGTH, parseWebhook, parseWebhookBody, WebhookPayloadError } from '../../src/webhook/webhook-payload';
import { ScanKind } from '../../src/scans/scan-kind';
import { MAX_SCAN_TIME_MS } from '../../src/scans/incoming-scan';

const PAGE = '1234567890';
const ENTRY_TIME = 1_700_000_000_000;
const ITEM_TIME = 1_700_000_000_123;

type Json = Record<string, unknown>;

function referralItem(overrides: Json = {}, referral: Json = { ref: 'table-7', source: 'MESSENGER_CODE', type: 'OPEN_THREAD' }): Json {
  return { sender: { id: 'psid-1' }, recipient: { id: PAGE }, timestamp: ITEM_TIME, referral, ...overrides };
}

/** referral null: a plain postback (Get Started tapped without a code). */
function postbackItem(overrides: Json = {}, referral: Json | null = { ref: 'welcome', source: 'MESSENGER_CODE' }): Json {
  return {
    sender: { id: 'psid-2' },
    recipient: { id: PAGE },
    timestamp: ITEM_TIME,
    postback: { title: 'Get Started', payload: 'GET_STARTED', ...(referral ? { referral } : {}) },
    ...overrides,
  };
}

function webhook(...messaging: unknown[]): Json {
  return { object: 'page', entry: [{ id: PAGE, time: ENTRY_TIME, messaging }] };
}

describe('parseWebhook: scans', () => {
  it('reads a referral as a REFERRAL scan with every field', () => {
    expect(parseWebhook(webhook(referralItem()))).toEqual({
      scans: [
        {
          pageId: PAGE,
          senderPsid: 'psid-1',
          kind: ScanKind.REFERRAL,
          ref: 'table-7',
          source: 'MESSENGER_CODE',
          occurredAt: new Date(ITEM_TIME),
        },
      ],
      ignored: 0,
      malformed: 0,
      malformedReasons: {},
      entryPageIds: [PAGE],
    });
  });

  it('reads a postback carrying a referral as a POSTBACK scan', () => {
    const { scans, ignored, malformed } = parseWebhook(webhook(postbackItem()));
    expect({ ignored, malformed }).toEqual({ ignored: 0, malformed: 0 });
    expect(scans).toEqual([
      {
        pageId: PAGE,
        senderPsid: 'psid-2',
        kind: ScanKind.POSTBACK,
        ref: 'welcome',
        source: 'MESSENGER_CODE',
        occurredAt: new Date(ITEM_TIME),
      },
    ]);
  });

  it('prefers a top-level referral over a postback referral in the same item', () => {
    const item = { ...postbackItem(), referral: { ref: 'top', source: 'SHORTLINK' } };
    const [scan] = parseWebhook(webhook(item)).scans;
    expect(scan).toMatchObject({ kind: ScanKind.REFERRAL, ref: 'top', source: 'SHORTLINK' });
  });

  it('ignores a plain postback, a message, a delivery, a read and non-object items, never as errors', () => {
    const parsed = parseWebhook(
      webhook(
        postbackItem({}, null),
        { sender: { id: 'p' }, recipient: { id: PAGE }, timestamp: ITEM_TIME, message: { mid: 'm1', text: 'hi' } },
        { sender: { id: 'p' }, recipient: { id: PAGE }, delivery: { mids: ['m1'], watermark: ITEM_TIME } },
        { sender: { id: 'p' }, recipient: { id: PAGE }, read: { watermark: ITEM_TIME } },
        { sender: { id: 'p' }, referral: 'not-an-object' },
        { sender: { id: 'p' }, postback: { referral: ['array', 'is', 'not', 'an', 'object'] } },
        null,
        'text',
        42,
        [referralItem()],
      ),
    );
    expect(parsed).toEqual({ scans: [], ignored: 10, malformed: 0, malformedReasons: {}, entryPageIds: [PAGE] });
  });

  it('names the page of each entry, in order, for the relay (a numeric id digit for digit; none where there is none)', () => {
    const raw = Buffer.from('{"object":"page","entry":[{"id":"111","messaging":[]},{"id":12345678901234567890},{"time":1},7]}');
    expect(parseWebhookBody(raw).entryPageIds).toEqual(['111', '12345678901234567890', undefined, undefined]);
  });

  it('reads every messaging and standby item of every entry, in order, not only messaging[0]', () => {
    const body = {
      object: 'page',
      entry: [
        {
          id: 'page-a',
          time: ENTRY_TIME,
          messaging: [
            referralItem({ recipient: { id: 'page-a' }, sender: { id: 's1' } }, { ref: 'a1' }),
            { sender: { id: 's1' }, message: { text: 'hello' } },
            referralItem({ recipient: { id: 'page-a' }, sender: { id: 's2' } }, { ref: 'a2' }),
          ],
        },
        { id: 'page-b', time: ENTRY_TIME, messaging: [postbackItem({ recipient: { id: 'page-b' }, sender: { id: 's3' } }, { ref: 'b1' })] },
        { id: 'page-c', time: ENTRY_TIME, messaging: [] },
        { id: 'page-d', time: ENTRY_TIME, standby: [referralItem({ recipient: { id: 'page-d' }, sender: { id: 's5' } }, { ref: 'd1' })] },
        'not an entry',
        { id: 'page-e', time: ENTRY_TIME, messaging: [referralItem({ recipient: { id: 'page-e' }, sender: { id: 's4' } }, { ref: 'e1' })] },
      ],
    };
    const parsed = parseWebhook(body);
    expect(parsed.scans.map((scan) => [scan.pageId, scan.senderPsid, scan.kind, scan.ref])).toEqual([
      ['page-a', 's1', ScanKind.REFERRAL, 'a1'],
      ['page-a', 's2', ScanKind.REFERRAL, 'a2'],
      ['page-b', 's3', ScanKind.POSTBACK, 'b1'],
      ['page-d', 's5', ScanKind.REFERRAL, 'd1'],
      ['page-e', 's4', ScanKind.REFERRAL, 'e1'],
    ]);
    expect(parsed.ignored).toBe(1);
    expect(parsed.malformed).toBe(0);
  });

  it('takes the page id from the recipient, else from the entry', () => {
    const body = {
      object: 'page',
      entry: [
        {
          id: 'entry-page',
          time: ENTRY_TIME,
          messaging: [
            referralItem({ recipient: { id: 'recipient-page' } }),
            referralItem({ recipient: undefined }),
            referralItem({ recipient: { id: '' } }),
            referralItem({ recipient: { id: 987654321 } }),
          ],
        },
      ],
    };
    expect(parseWebhook(body).scans.map((scan) => scan.pageId)).toEqual(['recipient-page', 'entry-page', 'entry-page', '987654321']);
  });

  it('accepts numeric sender ids as strings', () => {
    const [scan] = parseWebhook(webhook(referralItem({ sender: { id: 555 } }))).scans;
    expect(scan.senderPsid).toBe('555');
  });

  it('takes the timestamp from the item, else from entry.time, floored to a millisecond', () => {
    const body = {
      object: 'page',
      entry: [
        {
          id: PAGE,
          time: ENTRY_TIME,
          messaging: [
            referralItem({ timestamp: ITEM_TIME }),
            referralItem({ timestamp: undefined }),
            referralItem({ timestamp: '123' }),
            referralItem({ timestamp: ITEM_TIME + 0.9 }),
          ],
        },
      ],
    };
    expect(parseWebhook(body).scans.map((scan) => scan.occurredAt.getTime())).toEqual([ITEM_TIME, ENTRY_TIME, ENTRY_TIME, ITEM_TIME]);
  });

  it('gives a static code (no ref, null ref, empty ref) a null ref', () => {
    const parsed = parseWebhook(
      webhook(referralItem({}, { source: 'MESSENGER_CODE' }), referralItem({}, { ref: null }), referralItem({}, { ref: '' })),
    );
    expect(parsed.malformed).toBe(0);
    expect(parsed.scans.map((scan) => scan.ref)).toEqual([null, null, null]);
  });

  it('keeps a ref of exactly 2,083 characters, what an m.me link may carry', () => {
    const ref = 'r'.repeat(MAX_REF_LENGTH);
    expect(MAX_REF_LENGTH).toBe(2083);
    expect(parseWebhook(webhook(referralItem({}, { ref }))).scans[0].ref).toBe(ref);
  });

  it('keeps a scan whose ref holds NUL, with U+FFFD in its place (PostgreSQL text cannot hold NUL)', () => {
    const [scan] = parseWebhook(webhook(referralItem({}, { ref: 'ta\u0000ble' }))).scans;
    expect(scan.ref).toBe('ta\uFFFDble');
  });

  it('reads a referral riding on a message as a REFERRAL scan', () => {
    const item = {
      sender: { id: 'p' },
      recipient: { id: PAGE },
      timestamp: ITEM_TIME,
      message: { mid: 'm', text: 'hi', referral: { ref: 'ad-1', source: 'ADS' } },
    };
    expect(parseWebhook(webhook(item)).scans).toMatchObject([{ kind: ScanKind.REFERRAL, ref: 'ad-1', source: 'ADS' }]);
  });

  it('prefers the postback referral over one on a message in the same item', () => {
    const item = { ...postbackItem(), message: { referral: { ref: 'on-message' } } };
    expect(parseWebhook(webhook(item)).scans).toMatchObject([{ kind: ScanKind.POSTBACK, ref: 'welcome' }]);
  });

  it('reads a timestamp in seconds as seconds (anything below 1e11, i.e. before March 1973 in milliseconds)', () => {
    const parsed = parseWebhook(
      webhook(referralItem({ timestamp: 1_700_000_000 }), referralItem({ timestamp: 99_999_999_999 }), referralItem({ timestamp: 1e11 })),
    );
    expect(parsed.scans.map((scan) => scan.occurredAt.getTime())).toEqual([1_700_000_000_000, 99_999_999_999_000, 1e11]);
  });

  it('cleans the source of NUL characters and truncates it to 64 characters; an empty or non-string source is null', () => {
    const parsed = parseWebhook(
      webhook(
        referralItem({}, { ref: 'a', source: 'MESS\u0000ENGER\u0000_CODE' }),
        referralItem({}, { ref: 'b', source: 'S'.repeat(100) }),
        referralItem({}, { ref: 'c', source: '\u0000\u0000' }),
        referralItem({}, { ref: 'd', source: '' }),
        referralItem({}, { ref: 'e', source: 7 }),
        referralItem({}, { ref: 'f' }),
      ),
    );
    expect(parsed.malformed).toBe(0);
    expect(parsed.scans.map((scan) => scan.source)).toEqual(['MESSENGER_CODE', 'S'.repeat(64), null, null, null, null]);
  });
});

describe('parseWebhook: malformed scans are counted, not stored', () => {
  const malformedCases: [string, Json, string][] = [
    ['no sender', referralItem({ sender: undefined }), 'no sender'],
    ['a sender without id', referralItem({ sender: {} }), 'no sender'],
    ['an empty sender id', referralItem({ sender: { id: '' } }), 'no sender'],
    ['a sender that is a string', referralItem({ sender: 'psid-1' }), 'no sender'],
    ['a ref longer than 2,083 characters', referralItem({}, { ref: 'r'.repeat(2084) }), 'ref too long'],
    ['a ref within 2,083 characters but over the byte bound', referralItem({}, { ref: 'é'.repeat(MAX_REF_BYTES / 2 + 1) }), 'ref too long'],
    [
      'a ref within the byte bound as sent but over it once each NUL becomes U+FFFD (3 bytes)',
      referralItem({}, { ref: `${'r'.repeat(1700)}${'\u0000'.repeat(300)}` }),
      'ref too long',
    ],
    ['a numeric ref', referralItem({}, { ref: 42 }), 'ref not a string'],
    ['an object ref', referralItem({}, { ref: { nested: true } }), 'ref not a string'],
    ['a boolean ref', referralItem({}, { ref: false }), 'ref not a string'],
    ['a page id longer than 64 characters', referralItem({ recipient: { id: 'p'.repeat(65) } }), 'invalid page id'],
    ['a page id with NUL', referralItem({ recipient: { id: 'page\u0000' } }), 'invalid page id'],
    ['a zero timestamp', referralItem({ timestamp: 0 }), 'timestamp out of range'],
    ['a negative timestamp', referralItem({ timestamp: -5 }), 'timestamp out of range'],
    ['an infinite timestamp', referralItem({ timestamp: Infinity }), 'no timestamp'],
    ['a timestamp beyond what a Date holds', referralItem({ timestamp: 8.64e15 + 1 }), 'timestamp out of range'],
    ['a timestamp later than a scan id can order', referralItem({ timestamp: MAX_SCAN_TIME_MS + 1 }), 'timestamp out of range'],
  ];

  it.each(malformedCases)('%s', (_name, item, reason) => {
    expect(parseWebhook(webhook(item))).toEqual({
      scans: [],
      ignored: 0,
      malformed: 1,
      malformedReasons: { [reason]: 1 },
      entryPageIds: [PAGE],
    });
  });

  it('the latest time a scan id can order is accepted', () => {
    const { scans } = parseWebhook(webhook(referralItem({ timestamp: MAX_SCAN_TIME_MS })));
    expect(scans.map((scan) => scan.occurredAt.getTime())).toEqual([MAX_SCAN_TIME_MS]);
  });

  it('a postback scan without sender is malformed too', () => {
    expect(parseWebhook(webhook(postbackItem({ sender: undefined })))).toEqual({
      scans: [],
      ignored: 0,
      malformed: 1,
      malformedReasons: { 'no sender': 1 },
      entryPageIds: [PAGE],
    });
  });

  it('no page id at all (neither recipient nor entry id) is malformed', () => {
    const body = { object: 'page', entry: [{ time: ENTRY_TIME, messaging: [referralItem({ recipient: undefined })] }] };
    expect(parseWebhook(body)).toEqual({
      scans: [],
      ignored: 0,
      malformed: 1,
      malformedReasons: { 'no page id': 1 },
      entryPageIds: [undefined],
    });
  });

  it('no timestamp on the item nor on the entry is malformed', () => {
    const body = { object: 'page', entry: [{ id: PAGE, messaging: [referralItem({ timestamp: undefined })] }] };
    expect(parseWebhook(body)).toEqual({
      scans: [],
      ignored: 0,
      malformed: 1,
      malformedReasons: { 'no timestamp': 1 },
      entryPageIds: [PAGE],
    });
  });

  it('a malformed item does not hide the good ones around it', () => {
    const parsed = parseWebhook(
      webhook(referralItem({}, { ref: 'ok-1' }), referralItem({ sender: undefined }), referralItem({}, { ref: 'ok-2' })),
    );
    expect(parsed.scans.map((scan) => scan.ref)).toEqual(['ok-1', 'ok-2']);
    expect(parsed.malformed).toBe(1);
  });
});

describe('parseWebhook: not a page webhook', () => {
  const notPage: [string, unknown][] = [
    ['object is not "page"', { object: 'instagram', entry: [] }],
    ['object missing', { entry: [] }],
    ['entry missing', { object: 'page' }],
    ['entry an object', { object: 'page', entry: { id: PAGE } }],
    ['entry a string', { object: 'page', entry: '[]' }],
    ['body null', null],
    ['body undefined', undefined],
    ['body a string', '{"object":"page","entry":[]}'],
    ['body a number', 42],
    ['body an array', [{ object: 'page', entry: [] }]],
  ];

  it.each(notPage)('%s → WebhookPayloadError', (_name, body) => {
    expect(() => parseWebhook(body)).toThrow(WebhookPayloadError);
  });

  it('an empty entry list is a valid webhook with nothing in it', () => {
    expect(parseWebhook({ object: 'page', entry: [] })).toEqual({
      scans: [],
      ignored: 0,
      malformed: 0,
      malformedReasons: {},
      entryPageIds: [],
    });
  });
});

describe('parseWebhookBody', () => {
  const raw = (text: string) => Buffer.from(text, 'utf8');

  it('keeps integers beyond 2^53 digit for digit: two senders a double cannot tell apart stay two', () => {
    const text =
      `{"object":"page","entry":[{"id":9007199254740993,"time":${ENTRY_TIME},"messaging":[` +
      `{"sender":{"id":1234567890123456789},"recipient":{"id":9007199254740993},"timestamp":${ITEM_TIME},"referral":{"ref":"a"}},` +
      `{"sender":{"id":1234567890123456788},"recipient":{"id":9007199254740993},"timestamp":${ITEM_TIME},"referral":{"ref":"a"}}]}]}`;
    const { scans } = parseWebhookBody(raw(text));
    expect(scans.map((scan) => [scan.pageId, scan.senderPsid])).toEqual([
      ['9007199254740993', '1234567890123456789'],
      ['9007199254740993', '1234567890123456788'],
    ]);
  });

  it('reads a huge numeric timestamp as out of range, not as missing (which would take entry.time)', () => {
    const text = `{"object":"page","entry":[{"id":"${PAGE}","time":${ENTRY_TIME},"messaging":[{"sender":{"id":"s"},"recipient":{"id":"${PAGE}"},"timestamp":100000000000000000000,"referral":{"ref":"a"}}]}]}`;
    expect(parseWebhookBody(raw(text))).toMatchObject({ scans: [], malformed: 1, malformedReasons: { 'timestamp out of range': 1 } });
  });

  it('parses the usual body (ids as strings) exactly as JSON.parse would', () => {
    const body = webhook(referralItem({ sender: { id: '1254459154682919' } }));
    expect(parseWebhookBody(raw(JSON.stringify(body)))).toEqual(parseWebhook(body));
  });

  it('leaves a long digit run inside a string alone', () => {
    const body = webhook(referralItem({}, { ref: 'x:12345678901234567890,y' }));
    expect(parseWebhookBody(raw(JSON.stringify(body))).scans[0].ref).toBe('x:12345678901234567890,y');
  });

  // Found by test/faults/malformed-webhooks.test.ts: the lossless parser used for long numbers
  // refused what JSON.parse accepts, so such bodies were answered 400 instead of being read.
  it('accepts, with long numbers, what JSON.parse accepts without: a repeated key (the last wins)', () => {
    const text = `{"object":"page","entry":[{"id":"${PAGE}","time":${ENTRY_TIME},"messaging":[{"sender":{"id":1234567890123456789},"recipient":{"id":"${PAGE}"},"timestamp":${ITEM_TIME},"referral":{"ref":"a","ref":"b"}}]}]}`;
    expect(parseWebhookBody(raw(text)).scans.map((scan) => [scan.senderPsid, scan.ref])).toEqual([['1234567890123456789', 'b']]);
  });

  it('accepts, with long numbers, garbage nested thousands deep beside a scan', () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const text = `{"object":"page","entry":[{"id":"${PAGE}","time":${ENTRY_TIME},"junk":${deep},"messaging":[{"sender":{"id":1234567890123456789},"recipient":{"id":"${PAGE}"},"timestamp":${ITEM_TIME},"referral":{"ref":"a"}}]}]}`;
    expect(parseWebhookBody(raw(text)).scans.map((scan) => scan.senderPsid)).toEqual(['1234567890123456789']);
  });

  it('keeps a long negative integer, and reads long fractions and exponents as numbers', () => {
    const text = `{"object":"page","entry":[{"id":"${PAGE}","time":${ENTRY_TIME},"messaging":[{"sender":{"id":-1234567890123456789},"recipient":{"id":"${PAGE}"},"timestamp":1234567890123456.5,"referral":{"ref":"a"}},{"sender":{"id":"s"},"recipient":{"id":"${PAGE}"},"timestamp":12345678901234567e3,"referral":{"ref":"b"}}]}]}`;
    expect(parseWebhookBody(raw(text))).toMatchObject({
      scans: [],
      malformed: 2,
      malformedReasons: { 'timestamp out of range': 2 },
    });
  });

  it.each([
    '{"object":"page","entry":[{12345678901234567890:1}]}',
    `{"object":"page","entry":[{12345678901234567890${' '.repeat(100)}:1}]}`,
    '{"object":"page","entry":[01234567890123456789]}',
    '{"object":"page","entry":[{"id":"1","x":"unterminated 12345678901234567890}]}',
  ])('does not make %j JSON by quoting its long number', (text) => {
    expect(() => parseWebhookBody(raw(text))).toThrow(new WebhookPayloadError('body is not JSON'));
  });

  it.each(['{"object":"page","entry":[', '', 'not json', '{"object":"page","entry":[{"id":1234567890123456789'])(
    'refuses %j as not JSON',
    (text) => {
      expect(() => parseWebhookBody(raw(text))).toThrow(new WebhookPayloadError('body is not JSON'));
    },
  );
});
