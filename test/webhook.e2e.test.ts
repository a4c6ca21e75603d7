import { createHmac, randomBytes } from 'node:crypto';
import type { Gateway } from '../src/app/gateway';
import { serializeLikeMeta, webhookBodyOf, type SimulatedScan } from '../src/webhook/simulated-webhook';
import { ScanKind } from '../src/scans/scan.entity';
import { CodeScansDocument, GenerateCodeDocument, ScansDocument, type ScanFieldsFragment } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { countRows, startTestGateway, TEST_PAGE_ID, TEST_VERIFY_TOKEN, type TestGateway } from './support/gateway';
import { PrivacyWitness } from './support/privacy-witness';
import { postRawWebhook, postScans, TEST_APP_SECRET, type WebhookAnswer } from './support/webhook';

reportSkippedDatabases();

type Json = Record<string, unknown>;

/** A fresh page id per test keeps each test's scans apart from the others'. */
const newPageId = (): string => `9${randomBytes(6).readUIntBE(0, 6).toString().padStart(15, '0')}`;

const hmac = (algorithm: 'sha1' | 'sha256', body: string | Buffer, secret = TEST_APP_SECRET): string =>
  createHmac(algorithm, secret).update(body).digest('hex');

/** GET /webhook with exactly these query parameters (repeated names allowed). */
async function handshake(gateway: Gateway, params: [string, string][]): Promise<{ status: number; type: string | null; text: string }> {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(`${gateway.url}/webhook${query ? `?${query}` : ''}`);
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

/** POST /webhook with the given headers and nothing else (for headers postRawWebhook does not set). */
async function postWithHeaders(gateway: Gateway, body: string, headers: Record<string, string>): Promise<WebhookAnswer> {
  const response = await fetch(`${gateway.url}/webhook`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: response.status, text: await response.text() };
}

const messaging = (pageId: string, psid: string, timestamp: number, event: Json): Json => ({
  sender: { id: psid },
  recipient: { id: pageId },
  timestamp,
  ...event,
});

const envelope = (entries: unknown[]): Json => ({ object: 'page', entry: entries });

describe.each(DATABASE_KINDS)('webhook on %s', (kind) => {
  let gateway: TestGateway;
  const witness = new PrivacyWitness(() => gateway);
  const { psids, scan, query, post, postRaw } = witness;
  const newPsid = (): string => {
    const psid = `${Date.now()}${randomBytes(4).readUInt32BE(0)}`;
    psids.add(psid);
    return psid;
  };

  /** Every scan of a page, newest first, through the public API. */
  async function scansOfPage(pageId: string): Promise<ScanFieldsFragment[]> {
    const all: ScanFieldsFragment[] = [];
    let after: string | null = null;
    for (;;) {
      const { scans }: { scans: { edges: { node: ScanFieldsFragment }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } =
        await query(ScansDocument, { pageId, first: 100, after });
      all.push(...scans.edges.map((edge) => edge.node));
      if (!scans.pageInfo.hasNextPage) return all;
      after = scans.pageInfo.endCursor;
    }
  }
  const stored = async (): Promise<[number, number]> => [await countRows(gateway, 'scan'), await countRows(gateway, 'ref_counter')];
  const generate = async (ref: string | null) =>
    (await query(GenerateCodeDocument, { input: ref === null ? { imageSize: 100 } : { data: { ref }, imageSize: 100 } })).generateCode;
  const codeCounts = async (id: string) => {
    const { code } = await query(CodeScansDocument, { id, first: 1 });
    return { scanCount: code?.scanCount, lastScannedAt: code?.lastScannedAt, totalCount: code?.scans.totalCount };
  };

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  describe('GET /webhook handshake', () => {
    it('answers the challenge as plain text for the right token', async () => {
      const answer = await handshake(gateway, [
        ['hub.mode', 'subscribe'],
        ['hub.verify_token', TEST_VERIFY_TOKEN],
        ['hub.challenge', '1158201444'],
      ]);
      expect(answer).toEqual({ status: 200, type: expect.stringMatching(/^text\/plain\b/), text: '1158201444' });
      // A challenge that looks like markup comes back byte for byte, still as plain text.
      const markup = await handshake(gateway, [
        ['hub.challenge', '<b>x</b>&é'],
        ['hub.verify_token', TEST_VERIFY_TOKEN],
        ['hub.mode', 'subscribe'],
      ]);
      expect(markup).toEqual({ status: 200, type: expect.stringMatching(/^text\/plain\b/), text: '<b>x</b>&é' });
    });

    const refused: { name: string; params: [string, string][] }[] = [
      {
        name: 'a wrong token',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', 'not-the-token'],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'the token with another case',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', TEST_VERIFY_TOKEN.toUpperCase()],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'the token with a trailing space',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', `${TEST_VERIFY_TOKEN} `],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'a prefix of the token',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', TEST_VERIFY_TOKEN.slice(0, -1)],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'an empty token',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', ''],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'the token given twice',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', TEST_VERIFY_TOKEN],
          ['hub.verify_token', TEST_VERIFY_TOKEN],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'a wrong mode',
        params: [
          ['hub.mode', 'unsubscribe'],
          ['hub.verify_token', TEST_VERIFY_TOKEN],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'no mode',
        params: [
          ['hub.verify_token', TEST_VERIFY_TOKEN],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'no token',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.challenge', '42'],
        ],
      },
      {
        name: 'no challenge',
        params: [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', TEST_VERIFY_TOKEN],
        ],
      },
      { name: 'no parameters at all', params: [] },
    ];
    it.each(refused)('refuses $name with 403 and does not echo the challenge', async ({ params }) => {
      const answer = await handshake(gateway, params);
      expect(answer.status).toBe(403);
      expect(answer.text).not.toContain('42');
    });
  });

  describe('POST /webhook signature', () => {
    /** A body that is stored when correctly signed, so that a refusal means the signature alone was refused. */
    const goodBody = () => serializeLikeMeta(webhookBodyOf([scan(TEST_PAGE_ID, { ref: 'sig-check' })]));

    it('stores a correctly signed scan and answers 200', async () => {
      const before = await stored();
      const event = scan(TEST_PAGE_ID, { ref: 'sig-valid' });
      const answer = await post([event]);
      expect(answer.status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + 1);
    });

    const bad: { name: string; send: (body: string) => Promise<WebhookAnswer> }[] = [
      {
        name: 'a body tampered with after signing (one byte changed)',
        send: (body) => {
          const signature = `sha256=${hmac('sha256', body)}`;
          const tampered = body.replace(
            /"timestamp":(\d+)/,
            (_match, digits: string) => `"timestamp":${digits.slice(0, -1)}${(Number(digits.at(-1)) + 1) % 10}`,
          );
          expect(Buffer.byteLength(tampered)).toBe(Buffer.byteLength(body));
          expect(tampered).not.toBe(body);
          return postRaw(tampered, { signature });
        },
      },
      { name: 'a signature made with another secret', send: (body) => postRaw(body, { secret: 'another-app-secret' }) },
      { name: 'a signature made with an empty secret', send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', body, '')}` }) },
      { name: 'no signature header', send: (body) => postRaw(body, { signature: null }) },
      {
        name: 'only the SHA-1 X-Hub-Signature header (correct for the body)',
        send: async (body) => {
          const answer = await postWithHeaders(gateway, body, { 'x-hub-signature': `sha1=${hmac('sha1', body)}` });
          witness.remember(answer.text);
          return answer;
        },
      },
      { name: 'a SHA-1 value in the 256 header', send: (body) => postRaw(body, { signature: `sha1=${hmac('sha1', body)}` }) },
      { name: 'the SHA-256 value under a sha1= prefix', send: (body) => postRaw(body, { signature: `sha1=${hmac('sha256', body)}` }) },
      { name: 'sha256=zz', send: (body) => postRaw(body, { signature: 'sha256=zz' }) },
      { name: 'a digest one hex digit short', send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', body).slice(0, 63)}` }) },
      { name: 'a digest two hex digits long', send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', body)}00` }) },
      {
        name: 'a digest of the right length with a non-hex digit',
        send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', body).slice(0, 63)}g` }),
      },
      { name: 'the digest without the sha256= prefix', send: (body) => postRaw(body, { signature: hmac('sha256', body) }) },
      {
        name: 'the digest in base64',
        send: (body) => postRaw(body, { signature: `sha256=${createHmac('sha256', TEST_APP_SECRET).update(body).digest('base64')}` }),
      },
      { name: 'an empty header', send: (body) => postRaw(body, { signature: '' }) },
      { name: 'sha256= and nothing else', send: (body) => postRaw(body, { signature: 'sha256=' }) },
      {
        name: 'the signature of another body',
        send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', goodBody())}` }),
      },
      {
        name: 'a signature of the re-serialised JSON instead of the bytes sent',
        send: (body) => postRaw(body, { signature: `sha256=${hmac('sha256', JSON.stringify(JSON.parse(body)))}` }),
      },
    ];

    it.each(bad)('refuses $name with 401 and stores nothing; the same body correctly signed is stored', async ({ send }) => {
      const pageId = newPageId();
      // Escaped unicode and \/ in the body: re-serialising it changes its bytes.
      const body = serializeLikeMeta(webhookBodyOf([scan(pageId, { ref: 'caf\u00e9/1', source: 'SHORTLINK' })]));
      expect(body).toContain('\\u00e9');
      const before = await stored();
      const answer = await send(body);
      expect(answer.status).toBe(401);
      expect(await stored()).toEqual(before);
      expect(await scansOfPage(pageId)).toEqual([]);

      const accepted = await postRaw(body);
      expect(accepted.status).toBe(200);
      expect(await scansOfPage(pageId)).toHaveLength(1);
    });

    it("accepts Meta's escaped unicode and \\/ signed as raw bytes, and stores the decoded ref and source", async () => {
      const pageId = newPageId();
      const psid = newPsid();
      const timestamp = 1_764_100_000_123;
      // Written by hand exactly as Meta sends it: non-ASCII as \uXXXX (emoji as a surrogate pair), '/' as '\/'.
      const raw =
        '{"object":"page","entry":[{"id":"' +
        pageId +
        '","time":1764100000999,"messaging":[' +
        '{"sender":{"id":"' +
        psid +
        '"},"recipient":{"id":"' +
        pageId +
        '"},"timestamp":' +
        timestamp +
        ',' +
        '"referral":{"ref":"caf\\u00e9\\/table-\\ud83c\\udf55","source":"M\\u00c9NU\\/\\u2603","type":"OPEN_THREAD"}}]}]}';
      expect(raw).not.toMatch(/[^\x20-\x7e]/);
      const before = await stored();

      // The same content, re-serialised by JSON.stringify, has other bytes: its signature does not fit the raw body.
      const reserialised = JSON.stringify(JSON.parse(raw));
      expect(reserialised).not.toBe(raw);
      expect((await postRaw(raw, { signature: `sha256=${hmac('sha256', reserialised)}` })).status).toBe(401);
      expect(await stored()).toEqual(before);

      const answer = await postRaw(raw);
      expect(answer.status).toBe(200);
      const scans = await scansOfPage(pageId);
      expect(scans).toHaveLength(1);
      expect(scans[0]).toMatchObject({
        pageId,
        ref: 'café/table-🍕',
        source: 'MÉNU/☃',
        kind: 'REFERRAL',
        occurredAt: new Date(timestamp).toISOString(),
        code: null,
      });
    });

    it('accepts raw UTF-8 (unescaped) bytes signed as sent', async () => {
      const pageId = newPageId();
      const body = JSON.stringify(webhookBodyOf([scan(pageId, { ref: 'naïve/ref', source: 'ÜBER' })]));
      expect(Buffer.byteLength(body)).toBeGreaterThan(body.length);
      expect((await postRaw(body)).status).toBe(200);
      expect(await scansOfPage(pageId)).toMatchObject([{ ref: 'naïve/ref', source: 'ÜBER' }]);
    });
  });

  describe('POST /webhook bodies that are not page events', () => {
    const cases: { name: string; body: string }[] = [
      { name: 'an empty body', body: '' },
      { name: 'plain text', body: 'hello' },
      { name: 'truncated JSON', body: '{"object":"page","entry":[{"id":"1","messaging":[' },
      { name: 'form encoding', body: 'object=page&entry=1' },
      { name: 'JSON null', body: 'null' },
      { name: 'a JSON string', body: '"page"' },
      { name: 'a JSON array', body: '[{"object":"page","entry":[]}]' },
      { name: 'a user event', body: '{"object":"user","entry":[{"id":"1","time":1,"changes":[]}]}' },
      { name: 'an instagram event', body: '{"object":"instagram","entry":[]}' },
      { name: 'a page event without entry', body: '{"object":"page"}' },
      { name: 'a page event whose entry is an object', body: '{"object":"page","entry":{"id":"1","messaging":[]}}' },
      { name: 'an event without object', body: '{"entry":[]}' },
    ];
    it.each(cases)('answers 400 to $name correctly signed, storing nothing', async ({ body }) => {
      const before = await stored();
      const answer = await postRaw(body);
      expect(answer.status).toBe(400);
      expect(await stored()).toEqual(before);
    });

    it('checks the signature before parsing: a bad body with a bad signature is 401', async () => {
      expect((await postRaw('not json', { signature: 'sha256=' + '0'.repeat(64) })).status).toBe(401);
      expect((await postRaw('{"object":"user"}', { secret: 'wrong' })).status).toBe(401);
    });

    it('answers 200 to a page event with no scans in it, storing nothing', async () => {
      const before = await stored();
      expect((await postRaw('{"object":"page","entry":[]}')).status).toBe(200);
      expect((await postRaw('{"object":"page","entry":[{"id":"1","time":1}]}')).status).toBe(200);
      expect(await stored()).toEqual(before);
    });

    it('takes a batch of 1000 events (the most Meta sends at once) in one post', async () => {
      const pageId = newPageId();
      const before = await stored();
      const events = Array.from({ length: 1000 }, (_, index) =>
        scan(pageId, { ref: `bulk-${index % 7}`, kind: index % 3 === 0 ? ScanKind.POSTBACK : ScanKind.REFERRAL }),
      );
      expect((await post(events)).status).toBe(200);
      expect(await stored()).toEqual([before[0] + 1000, before[1] + 7]);
      const { scans } = await query(ScansDocument, { pageId, first: 1 });
      expect(scans.totalCount).toBe(1000);
    });
  });

  describe('parsing', () => {
    it('stores exactly the referrals and postback referrals of every entry and item (standby included), and ignores the rest', async () => {
      const otherPage = newPageId();
      const relayedPage = newPageId();
      const staticCode = await generate(null);
      const codeA = await generate('parse-a');
      const staticBefore = await codeCounts(staticCode.id);
      const psidA = newPsid();
      const psidB = newPsid();
      const t = 1_764_200_000_000;
      const body = envelope([
        {
          id: TEST_PAGE_ID,
          time: t + 99_999,
          messaging: [
            messaging(TEST_PAGE_ID, psidA, t + 1, { message: { mid: 'm1', text: 'hi' } }),
            messaging(TEST_PAGE_ID, psidA, t + 2, { referral: { ref: 'parse-a', source: 'MESSENGER_CODE', type: 'OPEN_THREAD' } }),
            messaging(TEST_PAGE_ID, psidA, t + 3, { delivery: { mids: ['m1'], watermark: t } }),
            messaging(TEST_PAGE_ID, psidB, t + 4, { postback: { title: 'Menu', payload: 'MENU' } }),
            messaging(TEST_PAGE_ID, psidB, t + 5, {
              postback: {
                title: 'Get Started',
                payload: 'GET_STARTED',
                referral: { ref: 'parse-a', source: 'SHORTLINK', type: 'OPEN_THREAD' },
              },
            }),
            messaging(TEST_PAGE_ID, psidA, t + 6, { read: { watermark: t } }),
            // No ref: the page's static code. No source: null.
            messaging(TEST_PAGE_ID, psidB, t + 7, { referral: { source: 'SHORTLINK', type: 'OPEN_THREAD' } }),
            messaging(TEST_PAGE_ID, psidA, t + 8, { referral: { type: 'OPEN_THREAD' } }),
            // A referral without a sender cannot be a person's scan.
            { recipient: { id: TEST_PAGE_ID }, timestamp: t + 9, referral: { ref: 'parse-a', source: 'SHORTLINK', type: 'OPEN_THREAD' } },
            messaging(TEST_PAGE_ID, psidA, t + 10, { message: { mid: 'm2', quick_reply: { payload: 'X' }, text: 'x' } }),
          ],
        },
        // What an app that does not own the thread receives: the only report of this scan it will get.
        { id: otherPage, time: t, standby: [messaging(otherPage, psidA, t, { referral: { ref: 'standby', source: 'ADS' } })] },
        {
          id: otherPage,
          time: t + 88_888,
          messaging: [
            messaging(otherPage, psidB, t + 20, { referral: { ref: 'parse-b', type: 'OPEN_THREAD' } }),
            messaging(otherPage, psidB, t + 21, { message_reads: {} }),
            messaging(otherPage, psidA, t + 22, {
              postback: {
                title: 'Get Started',
                payload: 'GET_STARTED',
                referral: { ref: 'parse-a', source: 'ADS', type: 'OPEN_THREAD', ad_id: '1' },
              },
            }),
            // The page is the event's recipient, even under another entry.
            messaging(relayedPage, psidA, t + 23, { referral: { ref: 'parse-c', source: 'SHORTLINK' } }),
          ],
        },
      ]);
      const before = await stored();
      const answer = await postRaw(serializeLikeMeta(body));
      expect(answer.status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + 8);

      const at = (offset: number) => new Date(t + offset).toISOString();
      const ours = (await scansOfPage(TEST_PAGE_ID)).filter((found) => found.occurredAt >= at(0) && found.occurredAt <= at(99_999));
      expect(ours.map(({ kind: k, ref, source, pageId, occurredAt }) => ({ kind: k, ref, source, pageId, occurredAt }))).toEqual([
        { kind: 'REFERRAL', ref: null, source: null, pageId: TEST_PAGE_ID, occurredAt: at(8) },
        { kind: 'REFERRAL', ref: null, source: 'SHORTLINK', pageId: TEST_PAGE_ID, occurredAt: at(7) },
        { kind: 'POSTBACK', ref: 'parse-a', source: 'SHORTLINK', pageId: TEST_PAGE_ID, occurredAt: at(5) },
        { kind: 'REFERRAL', ref: 'parse-a', source: 'MESSENGER_CODE', pageId: TEST_PAGE_ID, occurredAt: at(2) },
      ]);
      expect(ours.map((found) => found.code?.id)).toEqual([staticCode.id, staticCode.id, codeA.id, codeA.id]);

      expect(
        (await scansOfPage(otherPage)).map(({ kind: k, ref, source, occurredAt, code }) => ({ kind: k, ref, source, occurredAt, code })),
      ).toEqual([
        { kind: 'POSTBACK', ref: 'parse-a', source: 'ADS', occurredAt: at(22), code: null },
        { kind: 'REFERRAL', ref: 'parse-b', source: null, occurredAt: at(20), code: null },
        { kind: 'REFERRAL', ref: 'standby', source: 'ADS', occurredAt: at(0), code: null },
      ]);
      expect(await scansOfPage(relayedPage)).toMatchObject([{ pageId: relayedPage, ref: 'parse-c', kind: 'REFERRAL', occurredAt: at(23) }]);

      // Counted on their codes: the scans with no ref on the page's static code.
      expect(await codeCounts(codeA.id)).toEqual({ scanCount: 2, lastScannedAt: at(5), totalCount: 2 });
      expect(await codeCounts(staticCode.id)).toEqual({
        scanCount: (staticBefore.scanCount ?? 0) + 2,
        lastScannedAt: at(8) > (staticBefore.lastScannedAt ?? '') ? at(8) : staticBefore.lastScannedAt,
        totalCount: (staticBefore.totalCount ?? 0) + 2,
      });
    });

    it('ignores malformed scan items without failing the batch', async () => {
      const pageId = newPageId();
      const psid = newPsid();
      const t = 1_764_300_000_000;
      const body = envelope([
        {
          id: pageId,
          time: t,
          messaging: [
            null,
            'text',
            42,
            [],
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 1, referral: 'not-an-object' },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 2, postback: { title: 'x', referral: null } },
            { sender: { id: '' }, recipient: { id: pageId }, timestamp: t + 3, referral: { ref: 'empty-sender' } },
            { sender: {}, recipient: { id: pageId }, timestamp: t + 4, referral: { ref: 'no-sender-id' } },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 5, referral: { ref: 'r'.repeat(2084) } },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 6, referral: { ref: 12 } },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: -5, referral: { ref: 'negative-time' } },
            // Values the databases would refuse: past the Date range, an overlong page id.
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: 1e20, referral: { ref: 'beyond-dates' } },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: 8_640_000_000_000_001, referral: { ref: 'beyond-dates' } },
            { sender: { id: psid }, recipient: { id: '9'.repeat(65) }, timestamp: t + 8, referral: { ref: 'long-page' } },
            // NUL cannot be stored in PostgreSQL text: the scan is kept with U+FFFD in its place.
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 9, referral: { ref: 'nul\u0000ref' } },
            { sender: { id: psid }, recipient: { id: pageId }, timestamp: t + 7, referral: { ref: 'r'.repeat(250), source: 'SHORTLINK' } },
          ],
        },
        'not-an-entry',
        { id: pageId, time: t, messaging: 'not-a-list' },
      ]);
      const before = await stored();
      expect((await postRaw(JSON.stringify(body))).status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + 2);
      expect(await scansOfPage(pageId)).toMatchObject([
        { ref: 'nul\uFFFDref', occurredAt: new Date(t + 9).toISOString() },
        { ref: 'r'.repeat(250), occurredAt: new Date(t + 7).toISOString() },
      ]);
    });
  });

  describe('exactly once', () => {
    it('counts the same event posted twice once, and answers 200 both times', async () => {
      const code = await generate('once-twice');
      const event = scan(TEST_PAGE_ID, { ref: 'once-twice' });
      const before = await stored();
      expect((await post([event])).status).toBe(200);
      expect((await post([event])).status).toBe(200);
      expect(await stored()).toEqual([before[0] + 1, before[1]]);
      expect(await codeCounts(code.id)).toEqual({ scanCount: 1, lastScannedAt: new Date(event.timestamp).toISOString(), totalCount: 1 });
    });

    it('counts an event once when it comes again inside another batch with new events, and when a batch repeats it', async () => {
      const code = await generate('once-batch');
      const first = scan(TEST_PAGE_ID, { ref: 'once-batch' });
      const before = await stored();
      expect((await post([first])).status).toBe(200);
      const fresh = [scan(TEST_PAGE_ID, { ref: 'once-batch' }), scan(TEST_PAGE_ID, { ref: 'once-batch', kind: ScanKind.POSTBACK })];
      // A redelivery with another entry time, another order and the old event twice.
      const redelivered = JSON.parse(serializeLikeMeta(webhookBodyOf([fresh[0], first, fresh[1], first]))) as { entry: Json[] };
      redelivered.entry[0].time = Date.now() + 3_600_000;
      expect((await postRaw(serializeLikeMeta(redelivered))).status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + 3);
      expect((await codeCounts(code.id)).scanCount).toBe(3);
      // A redelivery that differs only in its source is still the same event.
      expect((await post([{ ...fresh[1], source: 'MESSENGER_CODE' }])).status).toBe(200);
      expect((await codeCounts(code.id)).scanCount).toBe(3);
      expect((await scansOfPage(TEST_PAGE_ID)).filter((found) => found.ref === 'once-batch')).toHaveLength(3);
    });

    it('counts identical posts arriving at the same time once', async () => {
      const code = await generate('once-race');
      const before = await stored();
      for (let round = 0; round < 3; round++) {
        const events = [scan(TEST_PAGE_ID, { ref: 'once-race' }), scan(TEST_PAGE_ID, { ref: 'once-race', kind: ScanKind.POSTBACK })];
        const answersNow = await Promise.all(Array.from({ length: 6 }, () => post(events)));
        expect(answersNow.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
      }
      expect((await stored())[0]).toBe(before[0] + 6);
      expect(await codeCounts(code.id)).toMatchObject({ scanCount: 6, totalCount: 6 });
    });

    it('counts again what differs in person, timestamp, kind, ref or page', async () => {
      const code = await generate('once-differs');
      const base = scan(TEST_PAGE_ID, { ref: 'once-differs' });
      const otherPage = newPageId();
      const variants: SimulatedScan[] = [
        base,
        { ...base, timestamp: base.timestamp + 1 },
        { ...base, kind: ScanKind.POSTBACK },
        { ...base, senderPsid: newPsid() },
        { ...base, ref: 'once-differs-2' },
        { ...base, ref: null },
        { ...base, pageId: otherPage },
      ];
      const before = await stored();
      for (const variant of variants) expect((await post([variant])).status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + variants.length);
      expect((await codeCounts(code.id)).scanCount).toBe(4);
      // And all of them once more: nothing new.
      expect((await post(variants)).status).toBe(200);
      expect((await stored())[0]).toBe(before[0] + variants.length);
      expect((await codeCounts(code.id)).scanCount).toBe(4);
    });
  });

  describe('without configuration', () => {
    let bare: TestGateway;
    beforeAll(async () => {
      bare = await startTestGateway(kind, { APP_SECRET: '', WEBHOOK_VERIFY_TOKEN: '' });
    });

    it('refuses every handshake when WEBHOOK_VERIFY_TOKEN is unset, an empty token included', async () => {
      for (const token of ['', TEST_VERIFY_TOKEN, 'undefined']) {
        const answer = await handshake(bare, [
          ['hub.mode', 'subscribe'],
          ['hub.verify_token', token],
          ['hub.challenge', '42'],
        ]);
        expect(answer.status).toBe(403);
        expect(answer.text).not.toContain('42');
      }
      expect(
        (
          await handshake(bare, [
            ['hub.mode', 'subscribe'],
            ['hub.challenge', '42'],
          ])
        ).status,
      ).toBe(403);
    });

    it('answers 401 to every post when APP_SECRET is unset, whatever secret signed it, and stores nothing', async () => {
      const body = serializeLikeMeta(webhookBodyOf([scan(TEST_PAGE_ID, { ref: 'no-secret' })]));
      for (const secret of [TEST_APP_SECRET, '', 'undefined']) {
        const answer = await postRawWebhook(bare.url, body, { secret });
        witness.remember(answer.text);
        expect(answer.status).toBe(401);
      }
      expect((await postRawWebhook(bare.url, body, { signature: null })).status).toBe(401);
      expect((await postRawWebhook(bare.url, 'not json', { secret: '' })).status).toBe(401);
      expect([await countRows(bare, 'scan'), await countRows(bare, 'ref_counter')]).toEqual([0, 0]);
    });
  });

  describe('size limit', () => {
    let small: TestGateway;
    beforeAll(async () => {
      small = await startTestGateway(kind, { WEBHOOK_MAX_BYTES: '2048' });
    });
    const smallStored = async () => [await countRows(small, 'scan'), await countRows(small, 'ref_counter')];
    /** A signed page event of exactly `size` bytes (JSON padded with trailing spaces). */
    const bodyOfSize = (size: number, events: SimulatedScan[]) => {
      const json = serializeLikeMeta(webhookBodyOf(events));
      expect(Buffer.byteLength(json)).toBeLessThanOrEqual(size);
      return json + ' '.repeat(size - Buffer.byteLength(json));
    };

    it('accepts a body of exactly the limit', async () => {
      const answer = await postRawWebhook(small.url, bodyOfSize(2048, [scan(TEST_PAGE_ID, { ref: 'at-limit' })]));
      expect(answer.status).toBe(200);
      expect(await smallStored()).toEqual([1, 1]);
    });

    it('answers 413 to a correctly signed body one byte over the limit and to a large batch, storing nothing', async () => {
      const before = await smallStored();
      const oneOver = await postRawWebhook(small.url, bodyOfSize(2049, [scan(TEST_PAGE_ID, { ref: 'over-limit' })]));
      expect(oneOver.status).toBe(413);
      const batch = Array.from({ length: 40 }, () => scan(TEST_PAGE_ID, { ref: 'over-limit' }));
      const large = await postScans(small.url, batch);
      expect(large.status).toBe(413);
      expect(await smallStored()).toEqual(before);
    });

    it('answers 413 to a streamed body over the limit (no Content-Length)', async () => {
      const before = await smallStored();
      const body = serializeLikeMeta(webhookBodyOf(Array.from({ length: 40 }, () => scan(TEST_PAGE_ID, { ref: 'streamed' }))));
      const signature = `sha256=${hmac('sha256', body)}`;
      const chunks = (async function* () {
        for (let offset = 0; offset < body.length; offset += 500) yield Buffer.from(body.slice(offset, offset + 500));
      })();
      const response = await fetch(`${small.url}/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
        body: chunks as unknown as BodyInit,
        duplex: 'half',
      } as RequestInit & { duplex: 'half' });
      expect(response.status).toBe(413);
      await response.text();
      expect(await smallStored()).toEqual(before);
    });
  });

  describe('privacy', () => {
    it('keeps PSIDs out of the logs', async () => {
      const pageId = newPageId();
      const psid = newPsid();
      // The gateway's log lines are captured by the test helper; "webhook stored" is a debug line.
      const level = gateway.logger.level;
      gateway.logger.level = 'debug';
      try {
        expect(
          (await post([scan(pageId, { senderPsid: psid, ref: 'logged' }), scan(pageId, { senderPsid: psid, ref: 'logged' })])).status,
        ).toBe(200);
        const malformed = envelope([
          { id: pageId, time: 1, messaging: [messaging(pageId, psid, -1, { referral: { ref: 'x'.repeat(300) } })] },
        ]);
        expect((await postRaw(JSON.stringify(malformed))).status).toBe(200);
        expect((await postRaw(`{"sender":"${psid}"`)).status).toBe(400);
        expect((await postRaw(JSON.stringify(malformed), { secret: 'wrong' })).status).toBe(401);
      } finally {
        gateway.logger.level = level;
      }
      const log = gateway.logs.text;
      expect(log).toContain('webhook stored');
      for (const known of psids) expect(log).not.toContain(known);
    });

    it('never returns a PSID through the API nor stores one in any table', async () => {
      expect(psids.size).toBeGreaterThan(1000);
      expect(await witness.leakedPsids()).toEqual([]);
    });
  });
});
