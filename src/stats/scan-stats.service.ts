import { LRUCache } from 'lru-cache';
import type { PageScope } from '../access';
import type { CodeService } from '../codes/code.service';
import { firstScanIdAt } from '../scans/scan.service';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { pageRefKey, refKey } from '../db/transformers';
import { BadUserInputError } from '../errors';
import { MAX_PAGE_SIZE } from '../pagination/cursor';
import type { CodeCount, ScanStats, SourceCount } from './scan-stats.types';
import { PeopleSketch, personHash } from './people-sketch';
import { decompose, sourceOfKey, type Piece } from './scan-rollups';
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
  /** the pages: every read of a page-owned table goes through it */
  pages: PageScope;
  /** undefined: every ref; a string: one code's (page, ref) */
  ref: string | undefined;
  /** the code whose visits count; undefined: every code of the pages */
  codeId: string | undefined;
  /** nothing can match (a code outside pageId): zeros, every bucket present */
  empty: boolean;
}

/** Totals of a bucket, and its people per page (a PSID belongs to one page). */
interface Tally {
  total: number;
  firstTime: number;
  people: Map<string, PeopleSketch>;
  /** people from pending rows or raw scans at edges, besides its rollup rows' */
  beyondRollups?: boolean;
}

/** The buckets' tallies, and the people of all their rollup rows (per page): the window's, but for pending rows and edges. */
interface Tallies {
  buckets: Tally[];
  rollupPeople: Map<string, PeopleSketch>;
}

interface PieceRow {
  /** 0 for a pending row */
  minutes: number | string;
  slot: number | string;
  page_id: string;
  /** sourceKey in scan_rollup_ref, '' in scan_rollup_page */
  source: string;
  total: number | string;
  first_time: number | string;
  /** a pending row's sketch; NULL for a rollup row (read by readRollupPeople when needed) */
  people: Uint8Array | null;
}

/** Bytes of merged sketches (and their keys) kept by a service: about 2,000 dense ones. */
const MERGED_PEOPLE_CACHE_BYTES = 32 * 1024 * 1024;

/** A rollup row: its table's key within a scope, and what it holds (its total only grows). */
const rowIdentity = (row: Pick<PieceRow, 'minutes' | 'slot' | 'page_id' | 'source'>) =>
  `${Number(row.minutes)}:${Number(row.slot)}:${row.page_id}:${row.source}`;

interface EdgeRow {
  i: number | string;
  page_id: string;
  sender_hash: string;
  total: number | string;
  first_time: number | string | null;
}

const pieceKey = (minutes: number | string, slot: number | string) => `${Number(minutes)}:${Number(slot)}`;

function emptyTally(): Tally {
  return { total: 0, firstTime: 0, people: new Map() };
}

/** Adds `sketch` to the people of `page` in `tally` (taking it over when the tally has none: it is not read again). */
function addPeople(tally: Tally, page: string, sketch: PeopleSketch): void {
  const mine = tally.people.get(page);
  if (mine) mine.addAll(sketch);
  else tally.people.set(page, sketch);
}

/** addPeople of a stored sketch: read into a sketch of its own only when the tally has none for the page. */
function addStoredPeople(tally: Tally, page: string, bytes: Uint8Array | null): void {
  const mine = tally.people.get(page);
  if (mine) mine.addSerialized(bytes);
  else tally.people.set(page, PeopleSketch.deserialize(bytes));
}

function uniquePeopleOf(tally: Tally): number {
  let people = 0;
  for (const sketch of tally.people.values()) people += sketch.estimate();
  return people;
}

/**
 * Statistics of scans and visits in [from, to), in buckets of local time, read from the
 * rollups (src/stats/scan-rollups.ts): each bucket is a few rollup rows (every local
 * boundary is a 15-minute boundary), plus, at edges not on a 15-minute boundary, the raw
 * scans there (a range of time-ordered ids). Unique people merge the rows' sketches per
 * page: exact up to 10,000 people, within 2 % above. The cost depends on the window, the
 * buckets and the pages, not on the number of scans.
 */
export class ScanStatsService {
  /**
   * The people of a bucket's rollup rows of one page, merged, by what those rows hold: a
   * row's sketch changes only when scans are added to it, which raises its total, so rows
   * named with their totals name one sketch for ever, on every instance. A dashboard asking
   * for the same days again reads their totals, not their sketches, and merges nothing.
   */
  private readonly mergedPeople = new LRUCache<string, PeopleSketch>({
    maxSize: MERGED_PEOPLE_CACHE_BYTES,
    sizeCalculation: (sketch, key) => sketch.byteSize + key.length * 2,
  });

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

    const plans = buckets.map((bucket) => decompose(bucket.start, bucket.end));
    const [tallies, visitsPerBucket, [visits], bySource] = scope.empty
      ? [{ buckets: buckets.map(emptyTally), rollupPeople: new Map<string, PeopleSketch>() }, buckets.map(() => 0), [0], []]
      : await Promise.all([
          this.tallyBuckets(scope, plans),
          this.countVisits(scope, buckets),
          this.countVisits(scope, [window]),
          this.countSources(scope, decompose(window.start, window.end)),
        ]);
    // Buckets are disjoint in time, not in people: the window's people are the union of
    // theirs, which their rollup rows' union holds but for the people of pending rows and
    // edges (a bucket's sketches are not read again, so the union may take them over).
    const overall: Tally = { ...emptyTally(), people: tallies.rollupPeople };
    const perBucket = tallies.buckets.map((tally) => {
      const uniquePeople = uniquePeopleOf(tally);
      overall.total += tally.total;
      overall.firstTime += tally.firstTime;
      if (tally.beyondRollups) for (const [page, sketch] of tally.people) addPeople(overall, page, sketch);
      return { total: tally.total, firstTime: tally.firstTime, returning: tally.total - tally.firstTime, uniquePeople };
    });
    return {
      from: request.from,
      to: request.to,
      interval,
      timeZone,
      total: overall.total,
      firstTime: overall.firstTime,
      returning: overall.total - overall.firstTime,
      uniquePeople: uniquePeopleOf(overall),
      visits,
      buckets: buckets.map((bucket, index) => ({
        start: new Date(bucket.boundary),
        ...perBucket[index],
        visits: visitsPerBucket[index],
      })),
      bySource,
      topCodesOf: (first) => (scope.empty ? Promise.resolve([]) : this.topCodes(scope, decompose(window.start, window.end), first)),
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
    const pages = context.access.readScope(request.pageId);
    if (request.codeId == null) return { pages, ref: undefined, codeId: undefined, empty: false };
    const code = await this.codes.requireById(context, request.codeId, 'codeId');
    const ofCode = pages.narrowTo(code.pageId);
    return { pages: ofCode, ref: refKey(code.ref), codeId: code.id, empty: ofCode.empty };
  }

  /** A code's ref as a condition on a table with a ref column (`alias`); nothing for every ref. The pages are the tables' (PageScope.table). */
  private refFilter(scope: Scope, bind: (value: unknown) => string, alias: string): string {
    return scope.ref === undefined ? '' : ` AND ${alias}.ref = ${bind(scope.ref)}`;
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

  /** `WITH p(minutes, slot)`: the rollup rows to read; empty without pieces. */
  private piecesCte(pieces: readonly Piece[], bind: (value: unknown) => string): string {
    if (pieces.length === 0) return '';
    return `WITH p(minutes, slot) AS (VALUES ${pieces.map((piece) => `(${bind(piece.minutes)}, ${bind(piece.slot)})`).join(', ')})`;
  }

  /**
   * The pending rows (appended by ingest, not yet folded into the rollup rows) from the
   * first piece's start to the last one's end, as rows of `columns`: exactly the pieces'
   * when they are contiguous (one window's are), else to be matched with them by the
   * caller. Read by the same statement as the rollup rows: a fold between two statements
   * would count its rows twice or not at all. One range, not a join with `p`: SQLite then
   * searched the index by page alone, reading every pending row of the page per piece.
   */
  private pendingPart(columns: string, pieces: readonly Piece[], scope: Scope, bind: (value: unknown) => string): string {
    const start = Math.min(...pieces.map((piece) => piece.slot));
    const end = Math.max(...pieces.map((piece) => piece.slot + piece.minutes * 60_000));
    return `SELECT ${columns} FROM ${scope.pages.table('scan_rollup_pending', bind, 'd')} WHERE d.slot >= ${bind(start)} AND d.slot < ${bind(end)}${this.refFilter(scope, bind, 'd')}`;
  }

  /** The raw scans of `edges` (not on 15-minute boundaries): an id range each, occurred_at making it exact. */
  private edgeCondition(edges: readonly (readonly [number, number])[], bind: (value: unknown) => string): string {
    return edges
      .map(
        ([start, end]) =>
          `(scan.id >= ${bind(firstScanIdAt(start))} AND scan.id < ${bind(firstScanIdAt(end))} AND scan.occurred_at >= ${bind(start)} AND scan.occurred_at < ${bind(end)})`,
      )
      .join(' OR ');
  }

  /** Totals, first-time scans and the people of each bucket: its rollup rows, and the raw scans of its edges. */
  private async tallyBuckets(scope: Scope, plans: { pieces: Piece[]; edges: [number, number][] }[]): Promise<Tallies> {
    const [pieceRows, edgeRows] = await Promise.all([
      this.readPieces(
        scope,
        plans.flatMap((plan) => plan.pieces),
      ),
      this.readEdges(scope, plans),
    ]);
    const rollupRows = plans.map((plan) => {
      const byPage = new Map<string, PieceRow[]>();
      for (const piece of plan.pieces) {
        for (const row of pieceRows.get(pieceKey(piece.minutes, piece.slot)) ?? []) {
          if (Number(row.minutes) === 0) continue;
          const rows = byPage.get(row.page_id) ?? [];
          rows.push(row);
          byPage.set(row.page_id, rows);
        }
      }
      return byPage;
    });
    const merged = await this.mergePeople(scope, rollupRows);
    const rollupPeople = this.unionOfBuckets(scope, rollupRows, merged);
    const tallies = plans.map((plan, index) => {
      const tally = emptyTally();
      for (const [page, sketch] of merged.sketches[index]) tally.people.set(page, sketch);
      for (const piece of plan.pieces) {
        for (const row of pieceRows.get(pieceKey(piece.minutes, piece.slot)) ?? []) {
          tally.total += Number(row.total);
          tally.firstTime += Number(row.first_time);
          if (Number(row.minutes) === 0) {
            addStoredPeople(tally, row.page_id, row.people);
            tally.beyondRollups = true;
          }
        }
      }
      return tally;
    });
    const edgePeople = new Map<string, number[]>();
    for (const row of edgeRows) {
      const tally = tallies[Number(row.i)];
      tally.beyondRollups = true;
      tally.total += Number(row.total);
      tally.firstTime += Number(row.first_time ?? 0);
      const key = `${Number(row.i)}\u0000${row.page_id}`;
      const hashes = edgePeople.get(key) ?? [];
      hashes.push(personHash(row.sender_hash));
      edgePeople.set(key, hashes);
    }
    for (const [key, hashes] of edgePeople) {
      const [index, page] = key.split('\u0000');
      addPeople(tallies[Number(index)], page, PeopleSketch.fromHashes(hashes));
    }
    return { buckets: tallies, rollupPeople };
  }

  /** Keeps a copy of `sketch` in mergedPeople, estimated first: the copies made of it are then estimated too. */
  private remember(key: string, sketch: PeopleSketch): void {
    sketch.estimate();
    this.mergedPeople.set(key, sketch.copy());
  }

  /** mergedPeople's key of the people of `rows` (rollup rows of one page) in `scope`. */
  private peopleKey(scope: Scope, rows: readonly PieceRow[]): string {
    const scopeKey = scope.ref === undefined ? 'page' : `ref=${scope.ref}`;
    return `${scopeKey}\u0000${rows.map((row) => `${rowIdentity(row)}=${Number(row.total)}`).join(',')}`;
  }

  /**
   * The people of every bucket's rollup rows, per page: from mergedPeople, else the union of
   * the buckets' (before anything else is added to them), kept unless a row was stale.
   */
  private unionOfBuckets(
    scope: Scope,
    rowsByBucket: Map<string, PieceRow[]>[],
    merged: { sketches: Map<string, PeopleSketch>[]; stale: boolean },
  ): Map<string, PeopleSketch> {
    const rowsByPage = new Map<string, PieceRow[]>();
    for (const byPage of rowsByBucket) {
      for (const [page, rows] of byPage) {
        const ofPage = rowsByPage.get(page) ?? [];
        ofPage.push(...rows);
        rowsByPage.set(page, ofPage);
      }
    }
    const union = new Map<string, PeopleSketch>();
    for (const [page, rows] of rowsByPage) {
      const key = this.peopleKey(scope, rows);
      const cached = this.mergedPeople.get(key);
      if (cached) {
        union.set(page, cached.copy());
        continue;
      }
      const sketch = new PeopleSketch();
      for (const sketches of merged.sketches) {
        const ofPage = sketches.get(page);
        if (ofPage) sketch.addAll(ofPage);
      }
      if (!merged.stale) this.remember(key, sketch);
      union.set(page, sketch);
    }
    return union;
  }

  /**
   * The people of each bucket's rollup rows, per page, each sketch the caller's own: from
   * mergedPeople, else merged from the rows' sketches, read for those buckets only (and kept
   * when the rows still held what their totals said: a fold in between makes them newer).
   */
  private async mergePeople(
    scope: Scope,
    rowsByBucket: Map<string, PieceRow[]>[],
  ): Promise<{ sketches: Map<string, PeopleSketch>[]; stale: boolean }> {
    const merged = rowsByBucket.map(() => new Map<string, PeopleSketch>());
    const missing: { bucket: number; page: string; key: string; rows: PieceRow[] }[] = [];
    rowsByBucket.forEach((byPage, bucket) => {
      for (const [page, rows] of byPage) {
        const key = this.peopleKey(scope, rows);
        const cached = this.mergedPeople.get(key);
        if (cached) merged[bucket].set(page, cached.copy());
        else missing.push({ bucket, page, key, rows });
      }
    });
    if (missing.length === 0) return { sketches: merged, stale: false };
    const pieces = new Map<string, Piece>();
    for (const { rows } of missing) {
      for (const row of rows) pieces.set(pieceKey(row.minutes, row.slot), { minutes: Number(row.minutes), slot: Number(row.slot) });
    }
    const stored = await this.readRollupPeople(scope, [...pieces.values()]);
    let stale = false;
    for (const { bucket, page, key, rows } of missing) {
      const sketch = new PeopleSketch();
      let unchanged = true;
      for (const row of rows) {
        const now = stored.get(rowIdentity(row));
        if (!now || Number(now.total) !== Number(row.total)) unchanged = false;
        sketch.addSerialized(now?.people);
      }
      if (unchanged) this.remember(key, sketch);
      else stale = true;
      merged[bucket].set(page, sketch);
    }
    return { sketches: merged, stale };
  }

  /** The rollup rows of the scope at `pieces` (no pending ones), their sketches included, by rowIdentity. */
  private async readRollupPeople(scope: Scope, pieces: Piece[]): Promise<Map<string, PieceRow>> {
    const { parameters, bind } = this.binder();
    const table = scope.ref === undefined ? 'scan_rollup_page' : 'scan_rollup_ref';
    const rows = await this.query<PieceRow>(
      `${this.piecesCte(pieces, bind)}
       SELECT r.minutes AS minutes, r.slot AS slot, r.page_id AS page_id, ${table === 'scan_rollup_ref' ? 'r.source' : "''"} AS source,
         r.total AS total, r.first_time AS first_time, r.people AS people
       FROM p CROSS JOIN ${scope.pages.table(table, bind, 'r')}
         WHERE r.minutes = p.minutes AND r.slot = p.slot${this.refFilter(scope, bind, 'r')}`,
      parameters,
    );
    return new Map(rows.map((row) => [rowIdentity(row), row]));
  }

  /**
   * The rows of the scope at `pieces`, by piece (one row per page, or per source of a code's):
   * rollup rows without their sketches (see mergePeople), pending rows with theirs.
   */
  private async readPieces(scope: Scope, pieces: Piece[]): Promise<Map<string, PieceRow[]>> {
    const byPiece = new Map<string, PieceRow[]>();
    if (pieces.length === 0) return byPiece;
    const { parameters, bind } = this.binder();
    const table = scope.ref === undefined ? 'scan_rollup_page' : 'scan_rollup_ref';
    const rows = await this.query<PieceRow>(
      `${this.piecesCte(pieces, bind)}
       SELECT r.minutes AS minutes, r.slot AS slot, r.page_id AS page_id, ${table === 'scan_rollup_ref' ? 'r.source' : "''"} AS source,
         r.total AS total, r.first_time AS first_time, NULL AS people
       FROM p CROSS JOIN ${scope.pages.table(table, bind, 'r')}
         WHERE r.minutes = p.minutes AND r.slot = p.slot${this.refFilter(scope, bind, 'r')}
       UNION ALL
       ${this.pendingPart('0 AS minutes, d.slot AS slot, d.page_id AS page_id, d.source AS source, d.total AS total, d.first_time AS first_time, d.people AS people', pieces, scope, bind)}`,
      parameters,
    );
    // Pending rows (minutes 0) go to the piece that holds their slot, if any (not at an edge between buckets).
    const ordered = [...pieces].sort((a, b) => a.slot - b.slot);
    const pieceAt = (slot: number): Piece | undefined => {
      let low = 0;
      let high = ordered.length - 1;
      while (low < high) {
        const middle = (low + high + 1) >> 1;
        if (ordered[middle].slot <= slot) low = middle;
        else high = middle - 1;
      }
      const piece = ordered[low];
      return piece.slot <= slot && slot < piece.slot + piece.minutes * 60_000 ? piece : undefined;
    };
    for (const row of rows) {
      let key = pieceKey(row.minutes, row.slot);
      if (Number(row.minutes) === 0) {
        const piece = pieceAt(Number(row.slot));
        if (!piece) continue;
        key = pieceKey(piece.minutes, piece.slot);
      }
      const list = byPiece.get(key) ?? [];
      list.push(row);
      byPiece.set(key, list);
    }
    return byPiece;
  }

  /** The raw scans at the buckets' edges, by bucket, page and person. */
  private async readEdges(scope: Scope, plans: { edges: [number, number][] }[]): Promise<EdgeRow[]> {
    const edges = plans.flatMap((plan, index) => plan.edges.map(([start, end]) => ({ index, start, end })));
    if (edges.length === 0) return [];
    const { parameters, bind } = this.binder();
    const rows = edges.map(
      ({ index, start, end }) =>
        `(${bind(index)}, ${bind(start)}, ${bind(end)}, ${bind(firstScanIdAt(start))}, ${bind(firstScanIdAt(end))})`,
    );
    return this.query<EdgeRow>(
      `WITH b(i, s, e, lo, hi) AS (VALUES ${rows.join(', ')})
       SELECT b.i AS i, scan.page_id AS page_id, scan.sender_hash AS sender_hash, COUNT(*) AS total,
         SUM(CASE WHEN scan.kind = 'POSTBACK' THEN 1 ELSE 0 END) AS first_time
       FROM b JOIN ${scope.pages.table('scan', bind)} ON scan.id >= b.lo AND scan.id < b.hi AND scan.occurred_at >= b.s AND scan.occurred_at < b.e
       WHERE 1 = 1${this.refFilter(scope, bind, 'scan')}
       GROUP BY b.i, scan.page_id, scan.sender_hash`,
      parameters,
    );
  }

  /** GETs of the REDIRECT links of the scope's codes, per bucket, by the time of the GET. */
  private async countVisits(scope: Scope, buckets: Bucket[]): Promise<number[]> {
    const { parameters, bind } = this.binder();
    const rows = buckets.map((bucket, index) => `(${bind(index)}, ${bind(bucket.start)}, ${bind(bucket.end)})`);
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const result = await this.query<{ i: number | string; visits: number | string | null }>(
      `WITH b(i, s, e) AS (VALUES ${rows.join(', ')})
       SELECT b.i AS i, SUM(code_visit.visits) AS visits
       FROM b JOIN ${scope.pages.table('code_visit', bind)} ON code_visit.at >= b.s AND code_visit.at < b.e
       JOIN ${scope.pages.table('code', bind)} ON code.id = code_visit.code_id
       ${scope.codeId === undefined ? '' : `WHERE code.id = ${bind(scope.codeId)}`}
       GROUP BY b.i`,
      parameters,
    );
    const byIndex = new Map(result.map((row) => [Number(row.i), Number(row.visits ?? 0)]));
    return buckets.map((_, index) => byIndex.get(index) ?? 0);
  }

  /** Scans by source over the window: rollup rows (per page, or a code's per source) and the raw scans of the edges. */
  private async countSources(scope: Scope, plan: { pieces: Piece[]; edges: [number, number][] }): Promise<SourceCount[]> {
    const { parameters, bind } = this.binder();
    const table = scope.ref === undefined ? 'scan_rollup_source' : 'scan_rollup_ref';
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const pieces = this.piecesCte(plan.pieces, bind);
    const parts: string[] = [];
    if (plan.pieces.length > 0) {
      parts.push(
        `SELECT r.source AS source, r.total AS total FROM p CROSS JOIN ${scope.pages.table(table, bind, 'r')}
         WHERE r.minutes = p.minutes AND r.slot = p.slot${this.refFilter(scope, bind, 'r')}`,
        this.pendingPart('d.source AS source, d.total AS total', plan.pieces, scope, bind),
      );
    }
    if (plan.edges.length > 0) {
      parts.push(
        `SELECT CASE WHEN scan.source IS NULL THEN '' ELSE '=' || scan.source END AS source, 1 AS total FROM ${scope.pages.table('scan', bind)}
         WHERE (${this.edgeCondition(plan.edges, bind)})${this.refFilter(scope, bind, 'scan')}`,
      );
    }
    const rows = await this.query<{ source: string; count: number | string }>(
      `${pieces} SELECT t.source AS source, SUM(t.total) AS count FROM (${parts.join(' UNION ALL ')}) t GROUP BY t.source`,
      parameters,
    );
    return rows
      .map((row) => ({ source: sourceOfKey(row.source), count: Number(row.count) }))
      .filter((row) => row.count > 0)
      .sort((a, b) => b.count - a.count || (a.source ?? '\uffff').localeCompare(b.source ?? '\uffff'));
  }

  /** The codes with the most scans in the window; orphan scans (no code) are left out. */
  private async topCodes(scope: Scope, plan: { pieces: Piece[]; edges: [number, number][] }, first: number): Promise<CodeCount[]> {
    if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
      throw new BadUserInputError('first', `first must be between 1 and ${MAX_PAGE_SIZE}, got ${first}`);
    }
    const { parameters, bind } = this.binder();
    const pieces = this.piecesCte(plan.pieces, bind);
    const parts: string[] = [];
    if (plan.pieces.length > 0) {
      parts.push(
        `SELECT r.page_id AS page_id, r.ref AS ref, r.total AS total FROM p CROSS JOIN ${scope.pages.table('scan_rollup_ref', bind, 'r')}
         WHERE r.minutes = p.minutes AND r.slot = p.slot${this.refFilter(scope, bind, 'r')}`,
        this.pendingPart('d.page_id AS page_id, d.ref AS ref, d.total AS total', plan.pieces, scope, bind),
      );
    }
    if (plan.edges.length > 0) {
      parts.push(
        `SELECT scan.page_id AS page_id, scan.ref AS ref, 1 AS total FROM ${scope.pages.table('scan', bind)}
         WHERE (${this.edgeCondition(plan.edges, bind)})${this.refFilter(scope, bind, 'scan')}`,
      );
    }
    const rows = await this.query<{ page_id: string; ref: string; count: number | string }>(
      // Summed per (page, ref) first, then matched with codes: joined before grouping, SQLite
      // built a temporary index over the thousands of rollup rows of every query.
      `${pieces} SELECT a.page_id AS page_id, a.ref AS ref, a.count AS count
       FROM (SELECT t.page_id AS page_id, t.ref AS ref, SUM(t.total) AS count FROM (${parts.join(' UNION ALL ')}) t GROUP BY t.page_id, t.ref) a
       WHERE EXISTS (SELECT 1 FROM ${scope.pages.table('code', bind)} WHERE code.page_id = a.page_id AND code.ref = a.ref)
       ORDER BY a.count DESC, a.page_id, a.ref
       LIMIT ${bind(first)}`,
      parameters,
    );
    const codes = await this.codes.findByPageRefs(
      scope.pages,
      rows.map((row) => ({ pageId: row.page_id, ref: row.ref === '' ? null : row.ref })),
    );
    return rows.flatMap((row) => {
      const code = codes.get(pageRefKey(row.page_id, row.ref === '' ? null : row.ref));
      return code ? [{ code, count: Number(row.count) }] : [];
    });
  }
}
