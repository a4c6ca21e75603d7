import { CodeTrackingDocument, GenerateTrackedCodeDocument, RegisterPageDocument, RemovePageDocument } from './generated/graphql';
import { mMeLink } from '../src/codes/m-me-link';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { databaseText } from './support/database-text';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { readOneQr } from './support/qr';
import { eventually } from './support/subscriptions';

reportSkippedDatabases();

const PUBLIC_URL = 'https://codes.bistro.example';

async function visitCountOf(gateway: TestGateway, id: string): Promise<number> {
  const { code } = await executeOk(gateway.url, CodeTrackingDocument, { id });
  return code?.visitCount ?? -1;
}

/** GETs (or HEADs) a link the way a phone's browser opens a scanned code, without following the redirect. */
function open(gateway: TestGateway, link: string, method = 'GET', headers: Record<string, string> = {}): Promise<Response> {
  const path = new URL(link).pathname;
  return fetch(`${gateway.url}${path}`, { method, redirect: 'manual', headers });
}

describe.each(DATABASE_KINDS)('REDIRECT codes on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind, { PUBLIC_URL });
  });

  it('encodes the gateway link, redirects to the m.me link and counts each GET', async () => {
    const { generateCode: code } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'table+12' }, imageSize: 300, tracking: 'REDIRECT' },
    });
    expect(code.tracking).toBe('REDIRECT');
    expect(code.link).toMatch(new RegExp(`^${PUBLIC_URL}/s/[0-9A-Za-z]{10}$`));
    expect(code.visitCount).toBe(0);
    // What a phone reads from the image is the gateway's link.
    const png = Buffer.from(await (await fetch(code.imageUrl.replace(PUBLIC_URL, gateway.url))).arrayBuffer());
    expect(await readOneQr(png)).toBe(code.link);

    const first = await open(gateway, code.link);
    expect(first.status).toBe(302);
    expect(first.headers.get('location')).toBe(mMeLink(TEST_PAGE_ID, 'table+12'));
    expect(first.headers.get('location')).toBe(`https://m.me/${TEST_PAGE_ID}?ref=table%2B12`);
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect((await open(gateway, code.link)).status).toBe(302);
    await eventually(async () => (await visitCountOf(gateway, code.id)) === 2, 10_000, 'two visits');
  });

  it('answers HEAD the same way without counting it, and 404 for an unknown slug', async () => {
    const { generateCode: code } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'head-check' }, imageSize: 300, tracking: 'REDIRECT' },
    });
    const head = await open(gateway, code.link, 'HEAD');
    expect(head.status).toBe(302);
    expect(head.headers.get('location')).toBe(mMeLink(TEST_PAGE_ID, 'head-check'));
    // A GET after the HEAD: once it is counted, the HEAD was not.
    await open(gateway, code.link);
    await eventually(async () => (await visitCountOf(gateway, code.id)) >= 1, 10_000, 'the visit');
    expect(await visitCountOf(gateway, code.id)).toBe(1);

    for (const path of ['/s/AAAAAAAAAA', '/s/not-a-slug!', '/s/']) {
      const response = await fetch(`${gateway.url}${path}`, { redirect: 'manual' });
      expect(response.status).toBe(404);
    }
  });

  it('keeps the slug for every image size, and keeps DIRECT codes direct', async () => {
    const input = { data: { ref: 'sizes' }, tracking: 'REDIRECT' as const };
    const small = (await executeOk(gateway.url, GenerateTrackedCodeDocument, { input: { ...input, imageSize: 300 } })).generateCode;
    const large = (await executeOk(gateway.url, GenerateTrackedCodeDocument, { input: { ...input, imageSize: 600 } })).generateCode;
    expect(large.id).toBe(small.id);
    expect(large.link).toBe(small.link);
    const png = Buffer.from(await (await fetch(large.imageUrl.replace(PUBLIC_URL, gateway.url))).arrayBuffer());
    expect(await readOneQr(png)).toBe(small.link);

    const direct = (await executeOk(gateway.url, GenerateTrackedCodeDocument, { input: { data: { ref: 'direct' }, imageSize: 300 } }))
      .generateCode;
    expect(direct.tracking).toBe('DIRECT');
    expect(direct.link).toBe(mMeLink(TEST_PAGE_ID, 'direct'));
    expect(direct.visitCount).toBe(0);
  });

  it('refuses the other tracking for an existing code, and stores nothing', async () => {
    const direct = (await executeOk(gateway.url, GenerateTrackedCodeDocument, { input: { data: { ref: 'stays-direct' }, imageSize: 300 } }))
      .generateCode;
    const images = await countRows(gateway, 'code_image');
    const refused = await execute(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'stays-direct' }, imageSize: 400, tracking: 'REDIRECT' },
    });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tracking' });
    expect(refused.errors?.[0].message).toMatch(/DIRECT/);
    expect(await countRows(gateway, 'code_image')).toBe(images);
    expect((await executeOk(gateway.url, CodeTrackingDocument, { id: direct.id })).code?.tracking).toBe('DIRECT');

    await executeOk(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'stays-redirect' }, imageSize: 300, tracking: 'REDIRECT' },
    });
    const back = await execute(gateway.url, GenerateTrackedCodeDocument, { input: { data: { ref: 'stays-redirect' }, imageSize: 300 } });
    expect(back.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tracking' });
  });

  it('gives two codes generated at once for the same ref one slug, and an image of it', async () => {
    const input = { data: { ref: 'raced' }, imageSize: 300, tracking: 'REDIRECT' as const };
    const results = await Promise.all(Array.from({ length: 4 }, () => executeOk(gateway.url, GenerateTrackedCodeDocument, { input })));
    const links = new Set(results.map(({ generateCode }) => generateCode.link));
    expect(links.size).toBe(1);
    const png = Buffer.from(await (await fetch(results[0].generateCode.imageUrl.replace(PUBLIC_URL, gateway.url))).arrayBuffer());
    expect(await readOneQr(png)).toBe([...links][0]);
  });

  it('stores counts only: nothing of the person who scanned', async () => {
    const { generateCode: code } = await executeOk(gateway.url, GenerateTrackedCodeDocument, {
      input: { data: { ref: 'privacy' }, imageSize: 300, tracking: 'REDIRECT' },
    });
    const agent = 'Mozilla/5.0 (iPhone; witness-agent-5f3e9a) Mobile/15E148';
    await open(gateway, code.link, 'GET', { 'user-agent': agent, 'x-forwarded-for': '203.0.113.77', 'accept-language': 'de-DE' });
    await eventually(async () => (await visitCountOf(gateway, code.id)) === 1, 10_000, 'the visit');
    const stored = await databaseText(gateway);
    for (const witness of ['witness-agent-5f3e9a', '203.0.113.77', 'de-DE']) expect(stored).not.toContain(witness);
    expect(gateway.logs.text).not.toContain('witness-agent-5f3e9a');
  });

  it('writes pending visits at stop, and forgets those of a removed page', async () => {
    const other = await startTestGateway(gateway.database, { PUBLIC_URL });
    await executeOk(other.url, RegisterPageDocument, { input: { id: '4000000000001' } });
    const { generateCode: code } = await executeOk(other.url, GenerateTrackedCodeDocument, {
      input: { pageId: '4000000000001', data: { ref: 'flushed' }, imageSize: 300, tracking: 'REDIRECT' },
    });
    for (let visit = 0; visit < 3; visit++) await open(other, code.link);
    await other.stop();
    expect(await visitCountOf(gateway, code.id)).toBe(3);
    const slots: { visits: number | string }[] = await gateway.db.dataSource.query(
      `SELECT visits FROM code_visit WHERE code_id = ${gateway.db.param(1)}`,
      [code.id],
    );
    expect(slots.reduce((sum, slot) => sum + Number(slot.visits), 0)).toBe(3);

    await executeOk(gateway.url, RemovePageDocument, { id: '4000000000001' });
    const left: unknown[] = await gateway.db.dataSource.query(`SELECT 1 FROM code_visit WHERE code_id = ${gateway.db.param(1)}`, [code.id]);
    expect(left).toEqual([]);
    expect((await open(gateway, code.link)).status).toBe(404);
  });
});

describe('REDIRECT with the FACEBOOK provider', () => {
  it('is refused: a Messenger Code can only open the page', async () => {
    const gateway = await startTestGateway('sqlite', {
      CODE_PROVIDER: 'facebook',
      PAGE_ACCESS_TOKEN: 'page-token',
      GRAPH_API_URL: 'http://127.0.0.1:9',
    });
    const refused = await execute(gateway.url, GenerateTrackedCodeDocument, { input: { data: { ref: 'x' }, tracking: 'REDIRECT' } });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'tracking' });
    expect(await countRows(gateway, 'code')).toBe(0);
  });
});
