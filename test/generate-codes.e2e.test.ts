import { CreateApiKeyDocument, GenerateCodeDocument, GenerateCodesDocument, RegisterPageDocument } from './generated/graphql';
import { mMeLink } from '../src/codes/m-me-link';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { Prng } from './support/prng';
import { readOneQr } from './support/qr';
import { postScans, scanOf } from './support/webhook';
import { readWithZbar } from './support/zbar';

reportSkippedDatabases();

const OTHER_PAGE = '6000000000001';

async function imageOf(url: string): Promise<Buffer> {
  return Buffer.from(await (await fetch(url)).arrayBuffer());
}

describe.each(DATABASE_KINDS)('generateCodes on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: OTHER_PAGE } });
  });

  async function rowCounts(): Promise<number[]> {
    return [await countRows(gateway, 'code'), await countRows(gateway, 'code_image'), await countRows(gateway, 'ref_counter')];
  }

  it('makes a code for every table of a series, in order, each scanning to its own link', async () => {
    const { generateCodes } = await executeOk(gateway.url, GenerateCodesDocument, {
      input: { series: { prefix: 'table-', from: 1, to: 30 }, imageSize: 300 },
    });
    expect(generateCodes.map((code) => code.ref)).toEqual(Array.from({ length: 30 }, (_, index) => `table-${index + 1}`));
    expect(new Set(generateCodes.map((code) => code.id)).size).toBe(30);
    for (const code of generateCodes) {
      expect(code).toMatchObject({ pageId: TEST_PAGE_ID, imageSize: 300, tracking: 'DIRECT' });
      expect(await readOneQr(await imageOf(code.imageUrl))).toBe(mMeLink(TEST_PAGE_ID, code.ref));
    }
  });

  it('returns the code a ref already has, with the scans it counted, in the order asked', async () => {
    const existing = (await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'bar-2' }, imageSize: 300 } }))
      .generateCode;
    await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'bar-2' }), scanOf(TEST_PAGE_ID, { ref: 'bar-3' })]);
    const { generateCodes } = await executeOk(gateway.url, GenerateCodesDocument, {
      input: { refs: ['bar-3', 'bar-2', 'bar-1'], imageSize: 300 },
    });
    expect(generateCodes.map((code) => [code.ref, code.scanCount])).toEqual([
      ['bar-3', 1],
      ['bar-2', 1],
      ['bar-1', 0],
    ]);
    expect(generateCodes[1].id).toBe(existing.id);
    // Another size gives every code an image of that size, the existing one included.
    const { generateCodes: larger } = await executeOk(gateway.url, GenerateCodesDocument, {
      input: { refs: ['bar-2', 'bar-1'], imageSize: 400 },
    });
    expect(larger.map((code) => [code.id, code.imageSize])).toEqual([
      [existing.id, 400],
      [generateCodes[2].id, 400],
    ]);
  });

  it('makes REDIRECT codes in bulk, each with its own link', async () => {
    const { generateCodes } = await executeOk(gateway.url, GenerateCodesDocument, {
      input: { pageId: OTHER_PAGE, refs: ['door-1', 'door-2'], imageSize: 300, tracking: 'REDIRECT' },
    });
    expect(new Set(generateCodes.map((code) => code.link)).size).toBe(2);
    for (const code of generateCodes) expect(await readOneQr(await imageOf(code.imageUrl))).toBe(code.link);
    const mixed = await execute(gateway.url, GenerateCodesDocument, {
      input: { pageId: OTHER_PAGE, refs: ['door-3', 'door-2'], imageSize: 300 },
    });
    expect(mixed.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'refs[1]' });
  });

  it.each([
    ['a bad ref, named by its index', { refs: ['ok-0', 'ok-1', 'ok-2', 'ok-3', 'ok-4', 'ok-5', 'ok-6', 'not ok', 'ok-8'] }, 'refs[7]'],
    ['a ref given twice', { refs: ['twice', 'once', 'twice'] }, 'refs[2]'],
    ['an empty list', { refs: [] }, 'refs'],
    ['501 refs', { refs: Array.from({ length: 501 }, (_, index) => `r-${index}`) }, 'refs'],
    ['both refs and a series', { refs: ['a'], series: { prefix: 'b', from: 1, to: 2 } }, 'series'],
    ['neither', {}, 'refs'],
    ['a series of 501', { series: { prefix: 'seat-', from: 0, to: 500 } }, 'series'],
    ['a series backwards', { series: { prefix: 'seat-', from: 5, to: 4 } }, 'series'],
    ['a series making bad refs', { series: { prefix: 'seat #', from: 1, to: 3 } }, 'series'],
    ['a size out of range', { refs: ['fine'], imageSize: 99 }, 'imageSize'],
  ])('refuses %s, and stores nothing', async (_name, input, field) => {
    const before = await rowCounts();
    const result = await execute(gateway.url, GenerateCodesDocument, { input: { imageSize: 300, ...input } });
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(result.data).toBeNull();
    expect(await rowCounts()).toEqual(before);
  });

  it('makes the most a call may: a series of 500', async () => {
    const { generateCodes } = await executeOk(gateway.url, GenerateCodesDocument, {
      input: { pageId: OTHER_PAGE, series: { prefix: 'seat-', from: 1, to: 500 }, imageSize: 100 },
    });
    expect(generateCodes).toHaveLength(500);
    expect(generateCodes.map((code) => code.ref)).toEqual(Array.from({ length: 500 }, (_, index) => `seat-${index + 1}`));
    // A sample read back by ZBar (neither of the decoders the gateway checks with): the first,
    // the last and eight others (seeded), each its own m.me link with its own ref.
    const random = new Prng(500);
    const sample = [0, 499, ...Array.from({ length: 8 }, () => 1 + random.int(498))];
    for (const index of sample) {
      const code = generateCodes[index];
      const link = mMeLink(OTHER_PAGE, `seat-${index + 1}`);
      expect(code).toMatchObject({ ref: `seat-${index + 1}`, link, pageId: OTHER_PAGE, imageSize: 100 });
      expect([index, await readWithZbar(await imageOf(code.imageUrl))]).toEqual([index, [link]]);
    }
  });
});

describe('generateCodes with keys and the rate limit', () => {
  let gateway: TestGateway;
  let editor: Record<string, string>;
  let viewer: Record<string, string>;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { GENERATE_RATE_LIMIT: '10' });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: OTHER_PAGE } });
    const admin = await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } });
    const asAdmin = { authorization: `Bearer ${admin.createApiKey.key}` };
    const make = async (role: 'EDITOR' | 'VIEWER') =>
      (await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: role, role, pageIds: [TEST_PAGE_ID] } }, asAdmin)).createApiKey
        .key;
    editor = { authorization: `Bearer ${await make('EDITOR')}` };
    viewer = { authorization: `Bearer ${await make('VIEWER')}` };
  });

  it('counts every code of a call, and refuses a call past the limit whole', async () => {
    const tooMany = await execute(
      gateway.url,
      GenerateCodesDocument,
      { input: { series: { prefix: 't', from: 1, to: 11 }, imageSize: 100 } },
      editor,
    );
    expect(tooMany.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(await countRows(gateway, 'code')).toBe(0);
    await executeOk(gateway.url, GenerateCodesDocument, { input: { series: { prefix: 't', from: 1, to: 8 }, imageSize: 100 } }, editor);
    const past = await execute(gateway.url, GenerateCodesDocument, { input: { refs: ['u1', 'u2', 'u3'], imageSize: 100 } }, editor);
    expect(past.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    expect(past.errors?.[0].extensions?.retryAfter).toEqual(expect.any(Number));
    expect(await countRows(gateway, 'code')).toBe(8);
    await executeOk(gateway.url, GenerateCodesDocument, { input: { refs: ['u1', 'u2'], imageSize: 100 } }, editor);
    expect(await countRows(gateway, 'code')).toBe(10);
  });

  it('is for EDITOR keys on their pages', async () => {
    const refused = await execute(gateway.url, GenerateCodesDocument, { input: { refs: ['v'], imageSize: 100 } }, viewer);
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN' });
    const elsewhere = await execute(
      gateway.url,
      GenerateCodesDocument,
      { input: { pageId: OTHER_PAGE, refs: ['w'], imageSize: 100 } },
      editor,
    );
    expect(elsewhere.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN', field: 'pageId' });
  });
});
