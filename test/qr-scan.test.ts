import { PNG } from 'pngjs';
import { mMeLink } from '../src/codes/m-me-link';
import { GenerateCodeDocument } from './generated/graphql';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { readQr } from './support/qr';

/** 250 characters using every allowed one, `+ / = :` included, several times. */
const LONG_REF = 'Table+12/Seat=3:a-b.c_d0Z9'.repeat(10).slice(0, 250);

describe('m.me link', () => {
  it('is the page alone for the static code', () => {
    expect(mMeLink(TEST_PAGE_ID, null)).toBe(`https://m.me/${TEST_PAGE_ID}`);
  });

  it('percent-encodes the ref like encodeURIComponent', () => {
    expect(mMeLink('123', 'table-12')).toBe('https://m.me/123?ref=table-12');
    expect(mMeLink('123', 'a+b/c=d:e-f.g_h')).toBe('https://m.me/123?ref=a%2Bb%2Fc%3Dd%3Ae-f.g_h');
    expect(mMeLink('123', LONG_REF)).toBe(`https://m.me/123?ref=${encodeURIComponent(LONG_REF)}`);
  });

  it('gives back every allowed character unchanged to a URL parser: a + never becomes a space', () => {
    const allowed = 'abcxyzABCXYZ0189+/=-.:_';
    for (const ref of [allowed, '+', '++', '=+=', LONG_REF]) {
      const link = new URL(mMeLink('123', ref));
      expect(link.searchParams.get('ref')).toBe(ref);
      expect(link.search).not.toContain('+');
    }
  });
});

describe('LOCAL codes scan as their m.me link', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  async function generateAndRead(ref: string | null, imageSize: number, factor = 1): Promise<string> {
    const { generateCode: code } = await executeOk(gateway.url, GenerateCodeDocument, {
      input: { imageSize, ...(ref === null ? {} : { data: { ref } }) },
    });
    expect(code).toMatchObject({ provider: 'LOCAL', imageSize, ref, pageId: TEST_PAGE_ID });
    const response = await fetch(code.imageUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await response.arrayBuffer());
    const decoded = PNG.sync.read(png);
    expect([decoded.width, decoded.height]).toEqual([imageSize, imageSize]);
    return readQr(png, factor);
  }

  it.each([
    [100, 1],
    [1000, 1],
    [2000, 4],
  ])('a code of %i px reads as the link with the ref percent-encoded', async (imageSize, factor) => {
    const ref = `t+${imageSize}/a=b:c`;
    const text = await generateAndRead(ref, imageSize, factor);
    expect(text).toBe(`https://m.me/${TEST_PAGE_ID}?ref=${encodeURIComponent(ref)}`);
    expect(text).toContain('%2B');
    expect(new URL(text).searchParams.get('ref')).toBe(ref);
  });

  it('a ref of 250 characters with + / = : reads back exactly at 1000 px', async () => {
    expect(LONG_REF).toHaveLength(250);
    const text = await generateAndRead(LONG_REF, 1000);
    expect(text).toBe(`https://m.me/${TEST_PAGE_ID}?ref=${encodeURIComponent(LONG_REF)}`);
    expect(text).not.toContain(' ');
    expect(new URL(text).searchParams.get('ref')).toBe(LONG_REF);
  });

  it('the static code reads as the page link without a ref', async () => {
    expect(await generateAndRead(null, 1000)).toBe(`https://m.me/${TEST_PAGE_ID}`);
    expect(await generateAndRead(null, 100)).toBe(`https://m.me/${TEST_PAGE_ID}`);
  });

  it('refuses a size too small for a long ref, naming imageSize, and stores nothing', async () => {
    const before = [await countRows(gateway, 'code'), await countRows(gateway, 'code_image')];
    const result = await execute(gateway.url, GenerateCodeDocument, {
      input: { imageSize: 100, data: { ref: `${LONG_REF.slice(0, 249)}Q` } },
    });
    expect(result.data ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'imageSize' });
    expect([await countRows(gateway, 'code'), await countRows(gateway, 'code_image')]).toEqual(before);
  });
});
