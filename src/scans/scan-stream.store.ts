import type { PageScope } from '../access';
import { CODE_COLUMNS, codeRecordFromRow, type CodeRecord, type CodeRow } from '../codes/code.wire';
import type { Database } from '../db/database';
import { pageRefKey, refKey, STATIC_REF_KEY } from '../db/transformers';
import type { ScanEvent, ScanFilter, StoredScanStream } from './scan-feed';
import type { ScanKind } from './scan.entity';

interface StreamRow {
  id: string;
  page_id: string;
  ref: string;
  kind: ScanKind;
  source: string | null;
  occurred_at: number | string;
  received_at: number | string;
  stream_seq: number | string;
}

/** Pairs looked up per query (two bind parameters each: far below SQLite's limit of 32,766). */
const CODES_PER_READ = 100;

/** The scans of the database in storage order, for the live feed (see StoredScanStream). */
export class ScanStreamStore implements StoredScanStream {
  constructor(private readonly db: Database) {}

  async position(): Promise<number> {
    // Not page-owned: the one row of the stream's position.
    const [row] = await this.db.read<{ position: number | string }>('SELECT position FROM scan_stream WHERE id = 1');
    return Number(row.position);
  }

  async readAfter(after: number, upTo: number, filter: ScanFilter, limit: number): Promise<ScanEvent[]> {
    const { scope } = filter;
    if (scope.empty) return [];
    const { values, bind } = this.db.parameters();
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const scans = scope.table('scan', bind, 's');
    const conditions = [`s.stream_seq > ${bind(after)}`, `s.stream_seq <= ${bind(upTo)}`];
    if (filter.pageId != null) conditions.push(`s.page_id = ${bind(filter.pageId)}`);
    if (filter.ref != null) conditions.push(`s.ref = ${bind(refKey(filter.ref))}`);
    if (filter.codeId != null) {
      // Values, not a correlated EXISTS, so that the (ref, stream_seq) index narrows the read to
      // the code's scans; SQLite's unary + keeps it from choosing the page's index instead.
      const pageColumn = this.db.kind === 'sqlite' ? '+s.page_id' : 's.page_id';
      conditions.push(`${pageColumn} = (SELECT c.page_id FROM ${scope.table('code', bind, 'c')} WHERE c.id = ${bind(filter.codeId)})`);
      conditions.push(`s.ref = (SELECT c.ref FROM ${scope.table('code', bind, 'c')} WHERE c.id = ${bind(filter.codeId)})`);
    }
    const rows = await this.db.read<StreamRow>(
      `SELECT s.id, s.page_id, s.ref, s.kind, s.source, s.occurred_at, s.received_at, s.stream_seq FROM ${scans}
       WHERE ${conditions.join(' AND ')} ORDER BY s.stream_seq LIMIT ${bind(limit)}`,
      values,
    );
    const codes = await this.codesOf(scope, rows);
    return rows.map((row) => ({
      scan: {
        id: row.id,
        pageId: row.page_id,
        ref: row.ref === STATIC_REF_KEY ? null : row.ref,
        kind: row.kind,
        source: row.source,
        occurredAt: Number(row.occurred_at),
        receivedAt: Number(row.received_at),
        streamSeq: Number(row.stream_seq),
      },
      code: codes.get(pageRefKey(row.page_id, row.ref)) ?? null,
    }));
  }

  /**
   * The code of each (page, ref) among the rows, as it is now: one query per CODES_PER_READ
   * pairs (a replay of 500 scans over 50 codes was 50 round trips).
   */
  private async codesOf(scope: PageScope, rows: StreamRow[]): Promise<Map<string, CodeRecord>> {
    const codes = new Map<string, CodeRecord>();
    // pageRefKey treats the stored '' and null alike.
    const pairs = [...new Map(rows.map((row) => [pageRefKey(row.page_id, row.ref), row] as const)).values()];
    for (let start = 0; start < pairs.length; start += CODES_PER_READ) {
      const { values, bind } = this.db.parameters();
      const from = scope.table('code', bind);
      const wanted = pairs.slice(start, start + CODES_PER_READ).map((row) => `(page_id = ${bind(row.page_id)} AND ref = ${bind(row.ref)})`);
      const found = await this.db.read<CodeRow>(`SELECT ${CODE_COLUMNS} FROM ${from} WHERE ${wanted.join(' OR ')}`, values);
      for (const code of found) codes.set(pageRefKey(code.page_id, code.ref), codeRecordFromRow(code));
    }
    return codes;
  }
}
