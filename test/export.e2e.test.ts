import { parse } from 'csv-parse/sync';
import { ScanKind } from '../src/scans/scan-kind';
import { CreateApiKeyDocument, GenerateCodeDocument, RegisterPageDocument } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { postScans, scanOf } from './support/webhook';

reportSkippedDatabases();

const PAGE_A = '2000000000001';
const PAGE_B = '2000000000002';
const HEADER = ['id', 'pageId', 'ref', 'codeId', 'kind', 'source', 'occurredAt', 'receivedAt'];
/** A fixed instant the scans of a test are placed around. */
const T0 = Date.parse('2026-11-02T10:00:00.000Z');

interface Exported {
  status: number;
  contentType: string | null;
  disposition: string | null;
  text: string;
  rows: string[][];
  json?: { errors?: { message: string; extensions: { code: string; field?: string } }[] };
}

async function exportScans(
  gateway: TestGateway,
  query: Record<string, string> = {},
  headers: Record<string, string> = {},
): Promise<Exported> {
  const search = new URLSearchParams(query).toString();
  const response = await fetch(`${gateway.url}/export/scans.csv${search ? `?${search}` : ''}`, { headers });
  const text = await response.text();
  const contentType = response.headers.get('content-type');
  const isCsv = contentType?.startsWith('text/csv') ?? false;
  return {
    status: response.status,
    contentType,
    disposition: response.headers.get('content-disposition'),
    text,
    rows: isCsv ? (parse(text, { relax_column_count: false }) as string[][]) : [],
    ...(isCsv ? {} : { json: JSON.parse(text) as Exported['json'] }),
  };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe.each(DATABASE_KINDS)('GET /export/scans.csv on %s', (kind) => {
  let gateway: TestGateway;
  let admin: Record<string, string>;
  let viewerOfA: Record<string, string>;
  let codeOfA: { id: string };
  let codeOfB: { id: string };

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    for (const id of [PAGE_A, PAGE_B]) await executeOk(gateway.url, RegisterPageDocument, { input: { id, name: `page ${id}` } });
    codeOfA = (await executeOk(gateway.url, GenerateCodeDocument, { input: { pageId: PAGE_A, data: { ref: 'table-1' }, imageSize: 100 } }))
      .generateCode;
    codeOfB = (await executeOk(gateway.url, GenerateCodeDocument, { input: { pageId: PAGE_B, data: { ref: 'b-only' }, imageSize: 100 } }))
      .generateCode;
    const created = await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } });
    admin = bearer(created.createApiKey.key);
    const viewer = await executeOk(
      gateway.url,
      CreateApiKeyDocument,
      { input: { name: 'viewer A', role: 'VIEWER', pageIds: [PAGE_A] } },
      admin,
    );
    viewerOfA = bearer(viewer.createApiKey.key);

    // Posted newest first: the export must sort them.
    const scans = [
      scanOf(PAGE_A, { ref: 'table-1', timestamp: T0 + 3_000, kind: ScanKind.POSTBACK }),
      scanOf(PAGE_A, { ref: 'no-code-here', timestamp: T0 + 2_000, source: null }),
      scanOf(PAGE_A, { ref: 'table-1', timestamp: T0 + 1_000 }),
      scanOf(PAGE_B, { ref: 'b-only', timestamp: T0 + 1_500 }),
    ];
    expect((await postScans(gateway.url, scans)).status).toBe(200);
  });

  it('streams every scan oldest first, with its code, as RFC 4180 CSV', async () => {
    const result = await exportScans(gateway, {}, admin);
    expect(result.status).toBe(200);
    expect(result.contentType).toBe('text/csv; charset=utf-8');
    expect(result.disposition).toBe('attachment; filename="scans.csv"');
    expect(result.text.split('\r\n')[0]).toBe(HEADER.join(','));
    expect(result.text.endsWith('\r\n')).toBe(true);
    const [header, ...rows] = result.rows;
    expect(header).toEqual(HEADER);
    expect(rows.map((row) => [row[1], row[2], row[3], row[5], row[6]])).toEqual([
      [PAGE_A, 'table-1', codeOfA.id, 'SHORTLINK', new Date(T0 + 1_000).toISOString()],
      [PAGE_B, 'b-only', codeOfB.id, 'SHORTLINK', new Date(T0 + 1_500).toISOString()],
      // An orphan's codeId and an absent source are empty cells.
      [PAGE_A, 'no-code-here', '', '', new Date(T0 + 2_000).toISOString()],
      [PAGE_A, 'table-1', codeOfA.id, 'SHORTLINK', new Date(T0 + 3_000).toISOString()],
    ]);
    expect(rows.map((row) => row[4])).toEqual(['REFERRAL', 'REFERRAL', 'REFERRAL', 'POSTBACK']);
    for (const row of rows) expect(Number.isNaN(Date.parse(row[7]))).toBe(false);
  });

  it('narrows to a page, a code, and [from, to)', async () => {
    const byPage = await exportScans(gateway, { pageId: PAGE_B }, admin);
    expect(byPage.rows.slice(1).map((row) => row[2])).toEqual(['b-only']);
    const byCode = await exportScans(gateway, { codeId: codeOfA.id }, admin);
    expect(byCode.rows.slice(1).map((row) => row[6])).toEqual([new Date(T0 + 1_000).toISOString(), new Date(T0 + 3_000).toISOString()]);
    // from is inside, to is not.
    const window = await exportScans(gateway, { from: new Date(T0 + 1_500).toISOString(), to: new Date(T0 + 3_000).toISOString() }, admin);
    expect(window.rows.slice(1).map((row) => row[2])).toEqual(['b-only', 'no-code-here']);
    const oneMsEitherSide = await exportScans(
      gateway,
      { from: new Date(T0 + 1_501).toISOString(), to: new Date(T0 + 3_001).toISOString() },
      admin,
    );
    expect(oneMsEitherSide.rows.slice(1).map((row) => row[6])).toEqual([
      new Date(T0 + 2_000).toISOString(),
      new Date(T0 + 3_000).toISOString(),
    ]);
    const empty = await exportScans(gateway, { from: new Date(T0 + 10_000).toISOString() }, admin);
    expect(empty.rows).toEqual([HEADER]);
  });

  it('gives a scoped key its pages only, exactly as /graphql would', async () => {
    const all = await exportScans(gateway, {}, viewerOfA);
    expect(all.status).toBe(200);
    expect(all.rows.slice(1).map((row) => row[1])).toEqual([PAGE_A, PAGE_A, PAGE_A]);
    expect(all.text).not.toContain('b-only');

    const otherPage = await exportScans(gateway, { pageId: PAGE_B }, viewerOfA);
    expect(otherPage.status).toBe(403);
    expect(otherPage.json?.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });

    const otherCode = await exportScans(gateway, { codeId: codeOfB.id }, viewerOfA);
    expect(otherCode.status).toBe(404);
    expect(otherCode.json?.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeId' });
    expect(otherCode.text).not.toContain('b-only');
  });

  it.each([
    ['no key', {}],
    ['an unknown key', { authorization: 'Bearer mcg_not-a-key' }],
  ])('refuses %s with 401 once the gateway is locked', async (_name, headers) => {
    const result = await exportScans(gateway, {}, headers);
    expect(result.status).toBe(401);
    expect(result.json?.errors?.[0].extensions.code).toBe('UNAUTHENTICATED');
    expect(result.text).not.toContain('table-1');
  });

  it.each([
    [{ from: 'yesterday' }, 'from'],
    [{ from: '2026-13-45T00:00:00Z' }, 'from'],
    [{ to: 'Dec 2 2026' }, 'to'],
    [{ from: new Date(T0).toISOString(), to: new Date(T0).toISOString() }, 'to'],
    [{ from: new Date(T0 + 1).toISOString(), to: new Date(T0).toISOString() }, 'to'],
  ])('refuses %j with 400 BAD_USER_INPUT on %s', async (query, field) => {
    const result = await exportScans(gateway, query, admin);
    expect(result.status).toBe(400);
    expect(result.json?.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
  });

  it('refuses a parameter given twice', async () => {
    const response = await fetch(`${gateway.url}/export/scans.csv?pageId=${PAGE_A}&pageId=${PAGE_B}`, { headers: admin });
    expect(response.status).toBe(400);
    expect(((await response.json()) as Exported['json'])?.errors?.[0].extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'pageId',
    });
  });
});

describe('GET /export/scans.csv: cells a spreadsheet would run, and many rows', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { CORS_ORIGINS: 'https://dashboard.example' });
  });

  it('prefixes cells beginning with = + - @ with a quote, and quotes commas, quotes and line breaks', async () => {
    const refs = ['=HYPERLINK("http://evil.example","x")', '+1+1', '-2', '@SUM(A1)', 'a,b', 'say "hi"', 'line\nbreak', 'plain'];
    const base = T0 + 100_000;
    await postScans(
      gateway.url,
      refs.map((ref, index) => scanOf(TEST_PAGE_ID, { ref, timestamp: base + index })),
    );
    const response = await fetch(`${gateway.url}/export/scans.csv?from=${new Date(base).toISOString()}`);
    const text = await response.text();
    const rows = parse(text) as string[][];
    expect(rows.slice(1).map((row) => row[2])).toEqual([
      `'=HYPERLINK("http://evil.example","x")`,
      `'+1+1`,
      `'-2`,
      `'@SUM(A1)`,
      'a,b',
      'say "hi"',
      'line\nbreak',
      'plain',
    ]);
    expect(text).toContain('"a,b"');
    expect(text).toContain('"say ""hi"""');
  });

  it('reads past its batches: 2,500 scans, each exactly once, in time order', async () => {
    const base = T0 + 1_000_000;
    const count = 2_500;
    for (let start = 0; start < count; start += 500) {
      const scans = Array.from({ length: 500 }, (_, index) =>
        scanOf(TEST_PAGE_ID, { ref: `bulk-${start + index}`, timestamp: base + start + index }),
      );
      expect((await postScans(gateway.url, scans)).status).toBe(200);
    }
    const response = await fetch(`${gateway.url}/export/scans.csv?from=${new Date(base).toISOString()}`);
    const rows = (parse(await response.text()) as string[][]).slice(1);
    expect(rows).toHaveLength(count);
    expect(rows.map((row) => row[2])).toEqual(Array.from({ length: count }, (_, index) => `bulk-${index}`));
    expect(new Set(rows.map((row) => row[0])).size).toBe(count);
  });

  it('lets a client walk away in the middle of an export', async () => {
    const controller = new AbortController();
    const response = await fetch(`${gateway.url}/export/scans.csv`, { signal: controller.signal });
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    await reader.read().catch(() => undefined);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    const complete = await fetch(`${gateway.url}/export/scans.csv`);
    expect((parse(await complete.text()) as string[][]).length).toBeGreaterThan(2_500);
    expect(gateway.logs.entries().filter((entry) => entry.level === 'error')).toEqual([]);
  });

  it('answers a browser preflight from an allowed origin, and none from another', async () => {
    const preflight = (origin: string) =>
      fetch(`${gateway.url}/export/scans.csv`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    const allowed = await preflight('https://dashboard.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://dashboard.example');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    const refused = await preflight('https://evil.example');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${gateway.url}/export/scans.csv`, { headers: { origin: 'https://dashboard.example' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('https://dashboard.example');
  });
});
