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
import { readQrCodesWithWidth, readQrResults } from './support/qr';

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

/** A rectangle in pixels of a page printed at DPI, edges included. */
interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** A line of ink one pixel wide: a row's run (horizontal) or a column's (vertical), at `at`, from `from` to `to`. */
interface Run {
  at: number;
  from: number;
  to: number;
}

interface PrintedPage {
  /** as pdfinfo gives it: "595.28 x 841.89 pts (A4)" */
  size: string;
  codes: { text: string; symbol: Box; quietZone: Box }[];
  words: { text: string; box: Box }[];
  /** ink that is neither a code (with its quiet zone) nor a word, as runs of at least 2 pt */
  horizontalMarks: Run[];
  verticalMarks: Run[];
  /** ink pixels outside codes and words that belong to no such run */
  strayInk: number;
  /** ink pixels in a quiet zone (less its outermost 2 px) */
  inkInQuietZones: number;
}

const PX_PER_MM = DPI / 25.4;
const PX_PER_PT = DPI / 72;

interface PrintedSheet {
  /** pdfimages -list, less its two header lines: every raster image of the sheet */
  images: string[];
  pages: PrintedPage[];
}

/**
 * A sheet as poppler prints it, page by page, for its layout: pdfinfo's page sizes, the codes as
 * ZXing-C++ finds them on a rendering without anti-aliasing (pure black and white, cut marks grey),
 * pdftotext's word boxes, and the rest of the ink as lines; and pdfimages' list of its images.
 */
async function printedSheet(pdf: Buffer): Promise<PrintedSheet> {
  const directory = mkdtempSync(join(tmpdir(), 'sheet-layout-'));
  try {
    const file = join(directory, 'sheet.pdf');
    writeFileSync(file, pdf);
    const imageList = execFileSync('pdfimages', ['-list', file]).toString().trimEnd().split('\n');
    expect(imageList[0]).toMatch(/^page\s+num\s+type/);
    const sizes = [
      ...execFileSync('pdfinfo', ['-f', '1', '-l', '100000', file])
        .toString()
        .matchAll(/^Page\s+\d+ size:\s+(.+)$/gm),
    ].map((match) => match[1].trim());
    // (stderr piped: pdftotext says "no word list" of a sheet without captions)
    const bboxes = execFileSync('pdftotext', ['-bbox', file, '-'], { stdio: 'pipe' }).toString().split('<page ').slice(1);
    execFileSync('pdftoppm', ['-r', String(DPI), '-gray', '-aa', 'no', '-aaVector', 'no', file, join(directory, 'page')]);
    const rasters = readdirSync(directory)
      .filter((name) => name.endsWith('.pgm'))
      .sort();
    expect(rasters).toHaveLength(sizes.length);
    expect(bboxes).toHaveLength(sizes.length);
    const pages: PrintedPage[] = [];
    for (const [index, name] of rasters.entries()) {
      const pgm = readFileSync(join(directory, name));
      const header = /^P5\s+(\d+)\s+(\d+)\s+255\s/.exec(pgm.subarray(0, 64).toString('latin1'));
      if (!header) throw new Error(`${name} is not an 8-bit PGM`);
      const [width, height] = [Number(header[1]), Number(header[2])];
      const grey = pgm.subarray(header[0].length);
      const rgba = new Uint8ClampedArray(width * height * 4);
      for (let i = 0; i < width * height; i++) rgba.fill(grey[i], i * 4, i * 4 + 3).fill(255, i * 4 + 3, i * 4 + 4);
      const found = await readQrResults({ data: rgba, width, height, colorSpace: 'srgb' } as ImageData);
      const codes = found.map(({ text, position }) => {
        const corners = [position.topLeft, position.topRight, position.bottomRight, position.bottomLeft];
        const symbol = {
          left: Math.min(...corners.map((corner) => corner.x)),
          top: Math.min(...corners.map((corner) => corner.y)),
          right: Math.max(...corners.map((corner) => corner.x)),
          bottom: Math.max(...corners.map((corner) => corner.y)),
        };
        const quiet = (4 * (symbol.right - symbol.left)) / QRCode.create(text, { errorCorrectionLevel: 'H' }).modules.size;
        return {
          text,
          symbol,
          quietZone: { left: symbol.left - quiet, top: symbol.top - quiet, right: symbol.right + quiet, bottom: symbol.bottom + quiet },
        };
      });
      const words = [
        ...bboxes[index].matchAll(/<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<\/word>/g),
      ].map((match) => ({
        text: match[5],
        box: {
          left: Number(match[1]) * PX_PER_PT,
          top: Number(match[2]) * PX_PER_PT,
          right: Number(match[3]) * PX_PER_PT,
          bottom: Number(match[4]) * PX_PER_PT,
        },
      }));
      const inside = (box: Box, x: number, y: number, margin: number) =>
        x >= box.left - margin && x <= box.right + margin && y >= box.top - margin && y <= box.bottom + margin;
      // The ink of the codes and words aside. A code's quiet zone ends where its cell's edges are,
      // at a pixel or two (rounding, ZXing's corners): ink in the last 2 px counts as marks.
      const ink = new Uint8Array(width * height);
      let inkInQuietZones = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          if (grey[y * width + x] >= 200) continue;
          const code = codes.find((candidate) => inside(candidate.quietZone, x, y, -2));
          if (code && !inside(code.symbol, x, y, 1)) inkInQuietZones++;
          if (code || words.some((word) => inside(word.box, x, y, 2))) continue;
          ink[y * width + x] = 1;
        }
      }
      const runs = (along: 'row' | 'column'): Run[] => {
        const [lines, length] = along === 'row' ? [height, width] : [width, height];
        const found: Run[] = [];
        for (let at = 0; at < lines; at++) {
          let from = -1;
          for (let i = 0; i <= length; i++) {
            const on = i < length && ink[along === 'row' ? at * width + i : i * width + at] === 1;
            if (on && from < 0) from = i;
            if (!on && from >= 0) {
              if (i - from >= 2 * PX_PER_PT) found.push({ at, from, to: i - 1 });
              from = -1;
            }
          }
        }
        return found;
      };
      const horizontalMarks = runs('row');
      const verticalMarks = runs('column');
      let strayInk = 0;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          if (ink[y * width + x] !== 1) continue;
          const onMark = (marks: Run[], at: number, along: number) =>
            marks.some((run) => run.at === at && along >= run.from && along <= run.to);
          if (!onMark(horizontalMarks, y, x) && !onMark(verticalMarks, x, y)) strayInk++;
        }
      }
      pages.push({ size: sizes[index], codes, words, horizontalMarks, verticalMarks, strayInk, inkInQuietZones });
    }
    return { images: imageList.slice(2), pages };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

/**
 * The cell of each code as the cut marks give it: the nearest marked lines around its quiet zone.
 * Fails unless every corner of that cell is marked (a horizontal and a vertical line through it),
 * the cell holds this code alone, at least 3 cm wide, and `caption` (when given) inside, under the code.
 */
function expectCutMarksAround(page: PrintedPage, code: PrintedPage['codes'][number], caption: string | null): void {
  const clusters = (values: number[]) =>
    [...new Set(values)].sort((a, b) => a - b).filter((value, i, all) => i === 0 || value - all[i - 1] > 1);
  const rows = clusters(page.horizontalMarks.map((run) => run.at));
  const columns = clusters(page.verticalMarks.map((run) => run.at));
  const slack = 2;
  const cell = {
    left: Math.max(...columns.filter((x) => x <= code.quietZone.left + slack)),
    right: Math.min(...columns.filter((x) => x >= code.quietZone.right - slack)),
    top: Math.max(...rows.filter((y) => y <= code.quietZone.top + slack)),
    bottom: Math.min(...rows.filter((y) => y >= code.quietZone.bottom - slack)),
  };
  const where = `${code.text}: cell ${JSON.stringify(cell)}`;
  expect([where, Object.values(cell).every(Number.isFinite)]).toEqual([where, true]);
  const through = (marks: Run[], at: number, along: number) =>
    marks.some((run) => Math.abs(run.at - at) <= 1 && run.from <= along + 1 && run.to >= along - 1);
  const unmarked = [
    [cell.left, cell.top],
    [cell.right, cell.top],
    [cell.left, cell.bottom],
    [cell.right, cell.bottom],
  ].filter(([x, y]) => !through(page.horizontalMarks, y, x) || !through(page.verticalMarks, x, y));
  expect([where, unmarked]).toEqual([where, []]);
  expect((cell.right - cell.left) / PX_PER_MM).toBeGreaterThanOrEqual(29.5);
  const overlaps = (box: Box) =>
    box.left < cell.right - slack && box.right > cell.left + slack && box.top < cell.bottom - slack && box.bottom > cell.top + slack;
  expect([where, page.codes.filter((other) => other !== code && overlaps(other.quietZone)).map((other) => other.text)]).toEqual([
    where,
    [],
  ]);
  if (caption !== null) {
    const boxes = page.words.filter((word) => word.text === caption && overlaps(word.box)).map((word) => word.box);
    expect([where, caption, boxes.length]).toEqual([where, caption, 1]);
    const [box] = boxes;
    const underCode = box.left >= cell.left && box.right <= cell.right && box.top >= code.symbol.bottom && box.bottom <= cell.bottom;
    expect([where, caption, box, underCode]).toEqual([where, caption, box, true]);
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

describe('print sheets on paper', () => {
  let gateway: TestGateway;
  let seats: { id: string; link: string; ref?: string | null }[];

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: PAGE_A } });
    seats = (
      await executeOk(gateway.url, GenerateCodesDocument, {
        input: { pageId: PAGE_A, series: { prefix: 'seat-', from: 1, to: 14 }, imageSize: 100 },
      })
    ).generateCodes;
  });

  it.each([
    ['A4', 3, true, '595.28 x 841.89 pts (A4)'],
    ['A4', 6, true, '595.28 x 841.89 pts (A4)'],
    ['LETTER', 6, false, '612 x 792 pts (letter)'],
  ] as const)(
    '%s, %i columns (captions: %s): every page that size, codes as vectors, a cut mark at each corner of every cell',
    async (paper, columns, captions, size) => {
      const { createPrintSheet: sheet } = await executeOk(gateway.url, CreatePrintSheetDocument, {
        input: { codeIds: seats.map((seat) => seat.id), paper, columns, captions },
      });
      const { images, pages } = await printedSheet(Buffer.from(await (await fetchPdf(sheet.url)).arrayBuffer()));
      // Vector codes: the sheet holds no raster image at all.
      expect(images).toEqual([]);
      expect(pages.map((page) => page.size)).toEqual(Array(sheet.pageCount).fill(size));
      expect(pages.flatMap((page) => page.codes.map((code) => code.text)).sort()).toEqual(seats.map((seat) => seat.link).sort());
      for (const page of pages) {
        expect([page.inkInQuietZones, page.strayInk]).toEqual([0, 0]);
        for (const code of page.codes) {
          expectCutMarksAround(page, code, captions ? (seats.find((seat) => seat.link === code.text)?.ref as string) : null);
        }
      }
    },
  );
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
