import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import QRCode from 'qrcode';
import {
  CreateApiKeyDocument,
  CreatePrintSheetDocument,
  GenerateCodeDocument,
  GenerateCodesDocument,
  RegisterPageDocument,
  RemovePageDocument,
} from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { startTestGateway, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { readQrCodesWithWidth } from './support/qr';

reportSkippedDatabases();

const PAGE_A = '8000000000001';
const PAGE_B = '8000000000002';
const DPI = 150;

interface Sheet {
  pages: number;
  codes: { text: string; widthCm: number }[];
  text: string;
}

/** Prints the PDF as poppler sees it: each page rasterised at 150 dpi and read by ZXing-C++, and its text. */
async function readSheet(pdf: Buffer): Promise<Sheet> {
  const directory = mkdtempSync(join(tmpdir(), 'sheet-'));
  try {
    writeFileSync(join(directory, 'sheet.pdf'), pdf);
    execFileSync('pdftoppm', ['-r', String(DPI), '-png', join(directory, 'sheet.pdf'), join(directory, 'page')]);
    const text = execFileSync('pdftotext', ['-layout', join(directory, 'sheet.pdf'), '-']).toString();
    const pages = readdirSync(directory)
      .filter((name) => name.endsWith('.png'))
      .sort();
    const codes: Sheet['codes'] = [];
    for (const page of pages) {
      for (const { text: link, widthPixels } of await readQrCodesWithWidth(readFileSync(join(directory, page)))) {
        // The code's width with its quiet zone (4 modules a side), as the contract measures it.
        const modules = QRCode.create(link, { errorCorrectionLevel: 'H' }).modules.size;
        codes.push({ text: link, widthCm: ((widthPixels * (modules + 8)) / modules / DPI) * 2.54 });
      }
    }
    return { pages: pages.length, codes, text };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

async function fetchPdf(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { headers });
}

describe.each(DATABASE_KINDS)('createPrintSheet on %s', (kind) => {
  let gateway: TestGateway;
  let tables: { id: string; link: string; ref?: string | null }[];

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } });
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_B } });
    tables = (
      await executeOk(gateway.url, GenerateCodesDocument, {
        input: { pageId: PAGE_A, series: { prefix: 'table-', from: 1, to: 30 }, imageSize: 100 },
      })
    ).generateCodes;
  });

  async function sheetCount(): Promise<number> {
    const rows: { n: number | string }[] = await gateway.db.dataSource.query('SELECT COUNT(*) AS n FROM print_sheet');
    return Number(rows[0].n);
  }

  it('prints every code so that it scans, at least 3 cm wide, with its caption, over as many pages as needed', async () => {
    const labelled = (
      await executeOk(gateway.url, GenerateCodeDocument, {
        input: { pageId: PAGE_A, data: { ref: 'bar' }, label: 'Bar counter', imageSize: 100 },
      })
    ).generateCode;
    const ids = [...tables.map((code) => code.id), labelled.id];
    const { createPrintSheet: sheet } = await executeOk(gateway.url, CreatePrintSheetDocument, { input: { codeIds: ids } });
    expect(sheet).toMatchObject({ codeCount: 31, url: `${gateway.publicUrl}/print-sheets/${sheet.id}` });

    const response = await fetchPdf(sheet.url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/pdf');
    expect(response.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    const printed = await readSheet(Buffer.from(await response.arrayBuffer()));
    expect(printed.pages).toBe(sheet.pageCount);
    expect(printed.pages).toBeGreaterThan(1);
    expect(printed.codes.map((code) => code.text).sort()).toEqual(
      [...tables.map((code) => code.link), `https://m.me/${PAGE_A}?ref=bar`].sort(),
    );
    for (const code of printed.codes) expect(code.widthCm).toBeGreaterThanOrEqual(3);
    // Captions: the label where there is one, else the ref.
    expect(printed.text).toContain('Bar counter');
    expect(printed.text).toContain('table-17');
    // Immutable, revalidated by ETag.
    expect((await fetchPdf(sheet.url, { 'if-none-match': response.headers.get('etag') as string })).status).toBe(304);
  });

  it('fits six columns on Letter paper, codes still 3 cm wide, and prints no captions when asked', async () => {
    const redirect = (
      await executeOk(gateway.url, GenerateCodesDocument, {
        input: { pageId: PAGE_A, refs: ['door-1', 'door-2', 'door-3'], imageSize: 100, tracking: 'REDIRECT' },
      })
    ).generateCodes;
    const { createPrintSheet: sheet } = await executeOk(gateway.url, CreatePrintSheetDocument, {
      input: { codeIds: [...redirect, ...tables.slice(0, 9)].map((code) => code.id), paper: 'LETTER', columns: 6, captions: false },
    });
    const printed = await readSheet(Buffer.from(await (await fetchPdf(sheet.url)).arrayBuffer()));
    expect(printed.pages).toBe(1);
    expect(printed.codes.map((code) => code.text).sort()).toEqual([...redirect, ...tables.slice(0, 9)].map((code) => code.link).sort());
    for (const code of printed.codes) expect(code.widthCm).toBeGreaterThanOrEqual(3);
    expect(printed.text.trim()).toBe('');
  });

  it.each([
    ['no code', { codeIds: [] }, 'codeIds', 'BAD_USER_INPUT'],
    ['501 codes', { codeIds: Array.from({ length: 501 }, () => '00000000-0000-4000-8000-000000000000') }, 'codeIds', 'BAD_USER_INPUT'],
    ['0 columns', { columns: 0 }, 'columns', 'BAD_USER_INPUT'],
    ['7 columns', { columns: 7 }, 'columns', 'BAD_USER_INPUT'],
    ['an unknown code', { unknownAt: 2 }, 'codeIds[2]', 'NOT_FOUND'],
  ])('refuses %s (%s on %s), storing nothing', async (_name, input, field, code) => {
    const before = await sheetCount();
    const { unknownAt, ...rest } = input as { unknownAt?: number; codeIds?: string[]; columns?: number };
    const codeIds =
      rest.codeIds ?? tables.slice(0, 4).map((table, index) => (index === unknownAt ? '00000000-0000-4000-8000-00000000dead' : table.id));
    const result = await execute(gateway.url, CreatePrintSheetDocument, { input: { ...rest, codeIds } });
    expect(result.errors?.[0].extensions).toMatchObject({ code, field });
    expect(await sheetCount()).toBe(before);
  });

  it("is held to the key's pages, and goes with its page", async () => {
    const ofB = (await executeOk(gateway.url, GenerateCodeDocument, { input: { pageId: PAGE_B, data: { ref: 'b-1' }, imageSize: 100 } }))
      .generateCode;
    const { createPrintSheet: sheetOfB } = await executeOk(gateway.url, CreatePrintSheetDocument, { input: { codeIds: [ofB.id] } });
    const admin = (await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'admin', role: 'ADMIN' } })).createApiKey.key;
    const asAdmin = { authorization: `Bearer ${admin}` };
    const key = async (role: 'EDITOR' | 'VIEWER') =>
      (await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: role, role, pageIds: [PAGE_A] } }, asAdmin)).createApiKey.key;
    const editorOfA = { authorization: `Bearer ${await key('EDITOR')}` };
    const viewerOfA = { authorization: `Bearer ${await key('VIEWER')}` };

    const hidden = await execute(gateway.url, CreatePrintSheetDocument, { input: { codeIds: [tables[0].id, ofB.id] } }, editorOfA);
    expect(hidden.errors?.[0].extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeIds[1]' });
    const viewer = await execute(gateway.url, CreatePrintSheetDocument, { input: { codeIds: [tables[0].id] } }, viewerOfA);
    expect(viewer.errors?.[0].extensions).toMatchObject({ code: 'FORBIDDEN' });

    expect((await fetchPdf(sheetOfB.url, editorOfA)).status).toBe(404);
    expect((await fetchPdf(sheetOfB.url, { authorization: 'Bearer mcg_unknown' })).status).toBe(401);
    expect((await fetchPdf(sheetOfB.url)).status).toBe(200);

    await executeOk(gateway.url, RemovePageDocument, { id: PAGE_B }, asAdmin);
    expect((await fetchPdf(sheetOfB.url)).status).toBe(404);
  });
});

describe('createPrintSheet and the rate limit', () => {
  it('counts every code of a sheet', async () => {
    const gateway = await startTestGateway('sqlite', { GENERATE_RATE_LIMIT: '5' });
    const codes = (await executeOk(gateway.url, GenerateCodesDocument, { input: { refs: ['a', 'b', 'c'], imageSize: 100 } })).generateCodes;
    const refused = await execute(gateway.url, CreatePrintSheetDocument, { input: { codeIds: codes.map((code) => code.id) } });
    expect(refused.errors?.[0].extensions).toMatchObject({ code: 'RATE_LIMITED' });
    const { createPrintSheet } = await executeOk(gateway.url, CreatePrintSheetDocument, {
      input: { codeIds: codes.slice(0, 2).map((code) => code.id) },
    });
    expect(createPrintSheet.codeCount).toBe(2);
  });
});
