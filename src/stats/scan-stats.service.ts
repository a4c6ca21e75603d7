import type { CodeService } from '../codes/code.service';
import { firstScanIdAt } from '../scans/scan.service';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { pageRefKey, refKey } from '../db/transformers';
import { BadUserInputError } from '../errors';
import { MAX_PAGE_SIZE } from '../pagination/cursor';
import type { CodeCount, ScanStats, SourceCount } from './scan-stats.types';
import { bucketsOf, StatsInterval, type Bucket } from './time-buckets';

export interface ScanStatsRequest {
  pageId?: string | null;
  codeId?: string | null;
  from: Date;
  to: Date;
  interval?: StatsInterval | null;
  timeZone?: string | null;
}

/** What the statistics count: the pages (null: all), and within them one ref (a code) or every ref. */
interface Scope {
  pageIds: readonly string[] | null;
  /** undefined: every ref; a string: one code's (page, ref) */
  ref: string | undefined;
  /** the code whose visits count; undefined: every code of the pages */
  codeId: string | undefined;
  /** nothing can match (a code outside pageId): zeros, every bucket present */
  empty: boolean;
}

interface BucketRow {
  i: number | string;
  total: number | string | null;
  first_time: number | string | null;
  people: number | string | null;
}

/**
 * Statistics of scans and visits in [from, to), in buckets of local time. This first
 * version counts from the stored scans (and visits) themselves, with SQL over the
 * time-ordered scan ids: exact, and cheap for the windows of a restaurant or a campaign,
 * but its cost grows with the scans in the window. Rollups maintained at ingest (and
 * mergeable sketches for unique people) are what keep it flat at millions of scans.
 */
export class ScanStatsService {
  constructor(
    private readonly db: Database,
    private readonly codes: CodeService,
  ) {}

  async stats(context: RequestContext, request: ScanStatsRequest): Promise<ScanStats> {
    const interval = request.interval ?? StatsInterval.DAY;
    const timeZone = request.timeZone ?? 'UTC';
    const buckets = bucketsOf(request.from, request.to, interval, timeZone);
    const scope = await this.scopeOf(context, request);
    const window: Bucket = { boundary: request.from.getTime(), start: request.from.getTime(), end: request.to.getTime() };

    const [perBucket, [overall], visitsPerBucket, [visits], bySource] = scope.empty
      ? [buckets.map(() => undefined), [undefined], buckets.map(() => 0), [0], []]
      : await Promise.all([
          this.countScans(scope, buckets),
          this.countScans(scope, [window]),
          this.countVisits(scope, buckets),
          this.countVisits(scope, [window]),
          this.countSources(scope, window),
        ]);
    const counts = (row: BucketRow | undefined) => {
      const total = Number(row?.total ?? 0);
      const firstTime = Number(row?.first_time ?? 0);
      return { total, firstTime, returning: total - firstTime, uniquePeople: Number(row?.people ?? 0) };
    };
    return {
      from: request.from,
      to: request.to,
      interval,
      timeZone,
      ...counts(overall),
      visits,
      buckets: buckets.map((bucket, index) => ({
        start: new Date(bucket.boundary),
        ...counts(perBucket[index]),
        visits: visitsPerBucket[index],
      })),
      bySource,
      topCodesOf: (first) => (scope.empty ? Promise.resolve([]) : this.topCodes(scope, window, first)),
    };
  }

  /**
   * Uncached: the statements differ by the number of buckets and pages, and the
   * prepared-statement cache of Database.read is for the few statements of hot paths.
   */
  private query<Row>(sql: string, parameters: unknown[]): Promise<Row[]> {
    return this.db.dataSource.query(sql, parameters);
  }

  /** FORBIDDEN for a page outside the key's, NOT_FOUND for a code it cannot see. */
  private async scopeOf(context: RequestContext, request: ScanStatsRequest): Promise<Scope> {
    const pageIds = context.access.pagesToRead(request.pageId);
    if (request.codeId == null) return { pageIds, ref: undefined, codeId: undefined, empty: false };
    const code = await this.codes.requireById(context, request.codeId, 'codeId');
    return {
      pageIds: [code.pageId],
      ref: refKey(code.ref),
      codeId: code.id,
      empty: pageIds !== null && !pageIds.includes(code.pageId),
    };
  }

  /** The scan conditions of the scope, with placeholders bound through `bind`. */
  private scanFilter(scope: Scope, bind: (value: unknown) => string): string {
    const conditions: string[] = [];
    if (scope.pageIds) conditions.push(`scan.page_id IN (${scope.pageIds.map(bind).join(', ')})`);
    if (scope.ref !== undefined) conditions.push(`scan.ref = ${bind(scope.ref)}`);
    return conditions.map((condition) => ` AND ${condition}`).join('');
  }

  /** Database.parameters, telling PostgreSQL what each number is: VALUES rows carry no column types. */
  private binder(): { parameters: unknown[]; bind: (value: unknown) => string } {
    const { values, bind } = this.db.parameters();
    const postgres = this.db.kind === 'postgres';
    return {
      parameters: values,
      bind: (value) => (postgres && typeof value === 'number' ? `${bind(value)}::bigint` : bind(value)),
    };
  }

  /** Totals, first-time scans and distinct people per bucket; a bucket without scans has no row. */
  private async countScans(scope: Scope, buckets: Bucket[]): Promise<(BucketRow | undefined)[]> {
    const { parameters, bind } = this.binder();
    // The id bounds let the index range-scan each bucket; occurred_at makes it exact.
    const rows = buckets.map(
      (bucket, index) =>
        `(${bind(index)}, ${bind(bucket.start)}, ${bind(bucket.end)}, ${bind(firstScanIdAt(bucket.start))}, ${bind(firstScanIdAt(bucket.end))})`,
    );
    const result = await this.query<BucketRow>(
      `WITH b(i, s, e, lo, hi) AS (VALUES ${rows.join(', ')})
       SELECT b.i AS i, COUNT(*) AS total,
         SUM(CASE WHEN scan.kind = 'POSTBACK' THEN 1 ELSE 0 END) AS first_time,
         COUNT(DISTINCT scan.page_id || ':' || scan.sender_hash) AS people
       FROM b JOIN scan ON scan.id >= b.lo AND scan.id < b.hi AND scan.occurred_at >= b.s AND scan.occurred_at < b.e
       WHERE 1 = 1${this.scanFilter(scope, bind)}
       GROUP BY b.i`,
      parameters,
    );
    const byIndex = new Map(result.map((row) => [Number(row.i), row]));
    return buckets.map((_, index) => byIndex.get(index));
  }

  /** GETs of the REDIRECT links of the scope's codes, per bucket, by the time of the GET. */
  private async countVisits(scope: Scope, buckets: Bucket[]): Promise<number[]> {
    const { parameters, bind } = this.binder();
    const rows = buckets.map((bucket, index) => `(${bind(index)}, ${bind(bucket.start)}, ${bind(bucket.end)})`);
    const conditions: string[] = [];
    if (scope.codeId !== undefined) conditions.push(`code.id = ${bind(scope.codeId)}`);
    else if (scope.pageIds) conditions.push(`code.page_id IN (${scope.pageIds.map(bind).join(', ')})`);
    const result = await this.query<{ i: number | string; visits: number | string | null }>(
      `WITH b(i, s, e) AS (VALUES ${rows.join(', ')})
       SELECT b.i AS i, SUM(code_visit.visits) AS visits
       FROM b JOIN code_visit ON code_visit.at >= b.s AND code_visit.at < b.e
       JOIN code ON code.id = code_visit.code_id
       WHERE 1 = 1${conditions.map((condition) => ` AND ${condition}`).join('')}
       GROUP BY b.i`,
      parameters,
    );
    const byIndex = new Map(result.map((row) => [Number(row.i), Number(row.visits ?? 0)]));
    return buckets.map((_, index) => byIndex.get(index) ?? 0);
  }

  private async countSources(scope: Scope, window: Bucket): Promise<SourceCount[]> {
    const { parameters, bind } = this.binder();
    const rows = await this.query<{ source: string | null; count: number | string }>(
      `SELECT scan.source AS source, COUNT(*) AS count FROM scan
       WHERE scan.id >= ${bind(firstScanIdAt(window.start))} AND scan.id < ${bind(firstScanIdAt(window.end))}
         AND scan.occurred_at >= ${bind(window.start)} AND scan.occurred_at < ${bind(window.end)}${this.scanFilter(scope, bind)}
       GROUP BY scan.source`,
      parameters,
    );
    return rows
      .map((row) => ({ source: row.source, count: Number(row.count) }))
      .sort((a, b) => b.count - a.count || (a.source ?? '\uffff').localeCompare(b.source ?? '\uffff'));
  }

  /** The codes with the most scans in the window; orphan scans (no code) are left out. */
  private async topCodes(scope: Scope, window: Bucket, first: number): Promise<CodeCount[]> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new BadUserInputError('first', `first must be between 1 and ${MAX_PAGE_SIZE}, got ${first}`);
    }
    const { parameters, bind } = this.binder();
    const rows = await this.query<{ page_id: string; ref: string; count: number | string }>(
      `SELECT scan.page_id AS page_id, scan.ref AS ref, COUNT(*) AS count
       FROM scan JOIN code ON code.page_id = scan.page_id AND code.ref = scan.ref
       WHERE scan.id >= ${bind(firstScanIdAt(window.start))} AND scan.id < ${bind(firstScanIdAt(window.end))}
         AND scan.occurred_at >= ${bind(window.start)} AND scan.occurred_at < ${bind(window.end)}${this.scanFilter(scope, bind)}
       GROUP BY scan.page_id, scan.ref
       ORDER BY COUNT(*) DESC, scan.page_id, scan.ref
       LIMIT ${bind(first)}`,
      parameters,
    );
    const codes = await this.codes.findByPageRefs(rows.map((row) => ({ pageId: row.page_id, ref: row.ref === '' ? null : row.ref })));
    return rows.flatMap((row) => {
      const code = codes.get(pageRefKey(row.page_id, row.ref === '' ? null : row.ref));
      return code ? [{ code, count: Number(row.count) }] : [];
    });
  }
}
