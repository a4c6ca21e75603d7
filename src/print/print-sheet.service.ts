import { createHash, randomUUID } from 'node:crypto';
import type { PageScope } from '../access';
import type { RequestContext } from '../context';
import type { GenerateRateLimit } from '../auth/generate-rate-limit';
import type { CodeService } from '../codes/code.service';
import type { Database } from '../db/database';
import { BadUserInputError } from '../errors';
import { PaperSize, renderPrintSheet } from './print-sheet.pdf';

export interface PrintSheetRequest {
  codeIds: readonly string[];
  paper?: PaperSize | null;
  columns?: number | null;
  captions?: boolean | null;
}

export interface PrintSheetRecord {
  id: string;
  url: string;
  pageCount: number;
  codeCount: number;
}

export interface StoredSheet {
  bytes: Buffer;
  sha256: string;
  pageIds: string[];
}

const MAX_SHEET_CODES = 500;
const MAX_COLUMNS = 6;

/**
 * Print sheets: PDFs of codes to cut out (see print-sheet.pdf.ts), stored in the database
 * and served from a permanent URL, as code images are. A sheet counts its codes towards
 * GENERATE_RATE_LIMIT.
 */
export class PrintSheetService {
  constructor(
    private readonly db: Database,
    private readonly codes: CodeService,
    private readonly rateLimit: GenerateRateLimit,
    private readonly publicUrl: () => string,
  ) {}

  async create(context: RequestContext, request: PrintSheetRequest): Promise<PrintSheetRecord> {
    const { codeIds } = request;
    if (codeIds.length < 1 || codeIds.length > MAX_SHEET_CODES) {
      throw new BadUserInputError('codeIds', `codeIds must hold 1 to ${MAX_SHEET_CODES} codes, got ${codeIds.length}`);
    }
    const columns = request.columns ?? 3;
    if (!Number.isInteger(columns) || columns < 1 || columns > MAX_COLUMNS) {
      throw new BadUserInputError('columns', `columns must be 1 to ${MAX_COLUMNS} (a code stays at least 3 cm wide), got ${columns}`);
    }
    const paper = request.paper ?? PaperSize.A4;
    if (!Object.values(PaperSize).includes(paper)) throw new BadUserInputError('paper', 'paper must be A4 or LETTER');
    const codes = await this.codes.requireManyById(context, codeIds, 'codeIds');

    return this.rateLimit.spend(context.access, codes.length, async () => {
      const { bytes, pageCount } = await renderPrintSheet(
        codes.map((code) => ({ link: this.codes.linkOf(code), caption: code.label ?? code.ref })),
        { paper, columns, captions: request.captions ?? true },
      );
      const id = randomUUID();
      const p = (n: number) => this.db.param(n);
      await this.db.transaction((manager) =>
        manager.query(
          `INSERT INTO print_sheet (id, page_ids, page_count, code_count, bytes, sha256, created_at)
           VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)})`,
          [
            id,
            JSON.stringify([...new Set(codes.map((code) => code.pageId))]),
            pageCount,
            codes.length,
            bytes,
            createHash('sha256').update(bytes).digest('hex'),
            Date.now(),
          ],
        ),
      );
      return { id, url: this.urlOf(id), pageCount, codeCount: codes.length };
    });
  }

  urlOf(id: string): string {
    return `${this.publicUrl()}/print-sheets/${id}`;
  }

  /** A stored sheet, if `scope` covers every page it shows. */
  async read(scope: PageScope, id: string): Promise<StoredSheet | null> {
    // page-scope exempt: a sheet may show several pages (a JSON list); the scope is checked against them all below.
    const rows = await this.db.read<{ bytes: Buffer | Uint8Array; sha256: string; page_ids: string }>(
      `SELECT bytes, sha256, page_ids FROM print_sheet WHERE id = ${this.db.param(1)}`,
      [id],
    );
    const row = rows[0];
    if (!row) return null;
    const pageIds = JSON.parse(row.page_ids) as string[];
    if (!pageIds.every((pageId) => scope.covers(pageId))) return null;
    return { bytes: Buffer.from(row.bytes), sha256: row.sha256, pageIds };
  }
}
