import type { QueryRunner } from 'typeorm';
import type { Database, DatabaseKind } from '../db/database';
import type { Logger } from '../logging/logger';
import { refKey } from '../db/transformers';
import type { Scan } from '../scans/scan.entity';
import { jsonLiteral, type IngestStep, type TransactionSql } from '../scans/scan.store';
import { PeopleSketch, personHash } from './people-sketch';

/**
 * Rollups of the scans, maintained in the transaction that stores them, so that the
 * statistics read a number of rows that depends on the window and the buckets, not on
 * the number of scans.
 *
 * Levels: every 15 minutes (all modern UTC offsets are multiples of 15 minutes, so every
 * local hour, day, week and month boundary is a 15-minute boundary), and 1 h, 2 h, 8 h and
 * the UTC day, each dividing the next, so that any run of 15-minute slots is a few rows:
 * a local day of Europe/Berlin is 6 of them (1 h, 8 h, 8 h, 2 h, 2 h, 2 h, 1 h…), of
 * Asia/Kathmandu about 10. A slot is identified by its level (minutes) and its start (epoch ms).
 *
 * Three tables: per page (totals, first-time scans, a sketch of the people), per (page,
 * ref, source) (the same, for Code.stats, its sources, and topCodes) and per (page,
 * source) (counts, for a page's sources). Edges of
 * [from, to) not on a 15-minute boundary are counted from the raw scans (see ScanStatsService).
 *
 * Ingest appends to scan_rollup_pending (one row per group of a transaction) and folds the
 * pending rows into the three tables in batches (compactRollups): a sketch is read and
 * rewritten once per fold rather than in every transaction.
 */
export const LEVEL_MINUTES = [1440, 480, 120, 60, 15] as const;
export const SLOT_MS = 15 * 60_000;
const LEVEL_MS = LEVEL_MINUTES.map((minutes) => minutes * 60_000);

/** The source of a rollup row: '' when Messenger sent none, else '=' and the source (a key that is never NULL). */
export function sourceKey(source: string | null): string {
  return source === null ? '' : `=${source}`;
}

export function sourceOfKey(key: string): string | null {
  return key === '' ? null : key.slice(1);
}

function slotStart(instant: number, levelMs: number): number {
  return instant - (((instant % levelMs) + levelMs) % levelMs);
}

/** A rollup row: `minutes` long, starting at `slot`. */
export interface Piece {
  minutes: number;
  slot: number;
}

/**
 * [start, end) as rollup rows (the 15-minute-aligned middle, fewest rows first by the
 * largest level that fits) and the edges left over, which are counted from raw scans.
 */
export function decompose(start: number, end: number): { pieces: Piece[]; edges: [number, number][] } {
  const alignedStart = Math.ceil(start / SLOT_MS) * SLOT_MS;
  const alignedEnd = Math.floor(end / SLOT_MS) * SLOT_MS;
  if (alignedStart >= alignedEnd) return { pieces: [], edges: [[start, end]] };
  const edges: [number, number][] = [];
  if (start < alignedStart) edges.push([start, alignedStart]);
  if (alignedEnd < end) edges.push([alignedEnd, end]);
  const pieces: Piece[] = [];
  let at = alignedStart;
  while (at < alignedEnd) {
    const level = LEVEL_MS.findIndex((ms) => slotStart(at, ms) === at && at + ms <= alignedEnd);
    pieces.push({ minutes: LEVEL_MINUTES[level], slot: at });
    at += LEVEL_MS[level];
  }
  return { pieces, edges };
}

interface CountRow {
  total: number;
  firstTime: number;
}
interface PeopleRow extends CountRow {
  sketch: PeopleSketch;
  /** the rows of the next finer level within this one (none at 15 minutes), whose people it has (see RollupDelta.mergeFiner) */
  finer: Set<PeopleRow>;
}

/** The scans of one (page, ref, source, 15-minute slot) in one transaction: a pending row. */
interface Group {
  pageId: string;
  /** refKey */
  ref: string;
  /** sourceKey */
  source: string;
  /** the 15-minute slot's start */
  slot: number;
  total: number;
  firstTime: number;
  sketch: PeopleSketch;
}

/**
 * Scans grouped by (page, ref, source, 15-minute slot), in the order their groups first
 * appear: a transaction holds thousands of scans and few groups. A scan finds its group
 * through maps nested by those four, keyed by its own fields (no key string and no object
 * per scan: building them was most of the cost of grouping); the scans of a transaction
 * mostly share their page, source and slot, so those are looked up only when they change.
 */
export class ScanGroups {
  readonly groups: Group[] = [];
  /** by page, source (as stored: null when Messenger sent none), slot and ref (refKey) */
  private readonly byPage = new Map<string, Map<string | null, Map<number, Map<string, Group>>>>();
  // The (page, source, slot) looked up last and its groups by ref; lastSlot NaN until then (not undefined: it stays a number).
  private lastPageId = '';
  private lastSource: string | null = null;
  private lastSlot = Number.NaN;
  private lastByRef = new Map<string, Group>();

  /** Adds a scan: `ref` its refKey, `source` as stored, `occurredAt` in epoch ms. */
  add(pageId: string, ref: string, source: string | null, occurredAt: number, senderHash: string, firstTime: boolean): void {
    const slot = occurredAt >= this.lastSlot && occurredAt < this.lastSlot + SLOT_MS ? this.lastSlot : slotStart(occurredAt, SLOT_MS);
    const group = this.groupOf(pageId, ref, source, slot);
    group.total += 1;
    if (firstTime) group.firstTime += 1;
    group.sketch.add(personHash(senderHash));
  }

  /** The group of (page, ref, source, 15-minute slot), empty when new: `ref` a refKey, `source` as stored. */
  groupOf(pageId: string, ref: string, source: string | null, slot: number): Group {
    if (slot !== this.lastSlot || pageId !== this.lastPageId || source !== this.lastSource) {
      this.lastByRef = this.byRefAt(pageId, source, slot);
      this.lastPageId = pageId;
      this.lastSource = source;
      this.lastSlot = slot;
    }
    let group = this.lastByRef.get(ref);
    if (group === undefined) {
      group = { pageId, ref, source: sourceKey(source), slot, total: 0, firstTime: 0, sketch: new PeopleSketch() };
      this.lastByRef.set(ref, group);
      this.groups.push(group);
    }
    return group;
  }

  private byRefAt(pageId: string, source: string | null, slot: number): Map<string, Group> {
    let bySource = this.byPage.get(pageId);
    if (bySource === undefined) {
      bySource = new Map();
      this.byPage.set(pageId, bySource);
    }
    let bySlot = bySource.get(source);
    if (bySlot === undefined) {
      bySlot = new Map();
      bySource.set(source, bySlot);
    }
    let byRef = bySlot.get(slot);
    if (byRef === undefined) {
      byRef = new Map();
      bySlot.set(slot, byRef);
    }
    return byRef;
  }
}

/** The groups of the scans a transaction stored. */
function groupScans(scans: readonly Scan[]): Group[] {
  const grouped = new ScanGroups();
  for (const scan of scans) {
    grouped.add(scan.pageId, refKey(scan.ref), scan.source, scan.occurredAt.getTime(), scan.senderHash, scan.kind === 'POSTBACK');
  }
  return grouped.groups;
}

/** What a set of scans adds to the rollups, by row. */
class RollupDelta {
  readonly pages = new Map<string, PeopleRow & { pageId: string; minutes: number; slot: number }>();
  readonly refs = new Map<string, PeopleRow & { pageId: string; ref: string; source: string; minutes: number; slot: number }>();
  readonly sources = new Map<string, CountRow & { pageId: string; source: string; minutes: number; slot: number }>();
  size = 0;

  /**
   * Adds a group to its rows at every level: its counts to each, its people to its rows
   * of 15 minutes only (a coarser row gets them from its finer rows, see mergeFiner).
   */
  addGroup(group: Group): void {
    const { pageId, ref: refOfGroup, source: sourceOfGroup, total, firstTime, sketch } = group;
    this.size += total;
    let finerPage: PeopleRow | undefined;
    let finerRef: PeopleRow | undefined;
    for (let level = LEVEL_MS.length - 1; level >= 0; level -= 1) {
      const minutes = LEVEL_MINUTES[level];
      const slot = slotStart(group.slot, LEVEL_MS[level]);
      const at = `${minutes}\u0000${slot}\u0000${pageId}`;
      const page = getOrAdd(this.pages, at, () => ({ pageId, minutes, slot, ...emptyPeople() }));
      const ref = getOrAdd(this.refs, `${at}\u0000${refOfGroup}\u0000${sourceOfGroup}`, () => ({
        pageId,
        ref: refOfGroup,
        source: sourceOfGroup,
        minutes,
        slot,
        ...emptyPeople(),
      }));
      const source = getOrAdd(this.sources, `${at}\u0000${sourceOfGroup}`, () => ({
        pageId,
        source: sourceOfGroup,
        minutes,
        slot,
        total: 0,
        firstTime: 0,
      }));
      for (const row of [page, ref, source]) {
        row.total += total;
        row.firstTime += firstTime;
      }
      if (finerPage && finerRef) {
        page.finer.add(finerPage);
        ref.finer.add(finerRef);
      } else {
        page.sketch.addAll(sketch);
        ref.sketch.addAll(sketch);
      }
      finerPage = page;
      finerRef = ref;
    }
  }

  /**
   * Gives each row above 15 minutes the people of its finer rows, finest levels first; once
   * every group is added. A row within one finer row (in a fold, most are: its pending rows
   * span a few seconds) shares that row's sketch, read only from here on, rather than adding
   * everyone again at each of the five levels.
   */
  mergeFiner(): void {
    for (const rows of [this.pages.values(), this.refs.values()]) {
      const byLevel = [...rows].sort((a, b) => a.minutes - b.minutes);
      for (const row of byLevel) {
        if (row.finer.size === 1) {
          const [only] = row.finer;
          row.sketch = only.sketch;
        } else for (const finer of row.finer) row.sketch.addAll(finer.sketch);
      }
    }
  }
}

function emptyPeople(): PeopleRow {
  return { total: 0, firstTime: 0, sketch: new PeopleSketch(), finer: new Set() };
}

function getOrAdd<V>(map: Map<string, V>, key: string, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** Rows per multi-row upsert: each size is one prepared statement. */
const UPSERT_CHUNK_SIZES = [50, 10, 1];

function* chunks<T>(rows: T[]): Generator<T[]> {
  let offset = 0;
  for (const size of UPSERT_CHUNK_SIZES) {
    while (rows.length - offset >= size) {
      yield rows.slice(offset, offset + size);
      offset += size;
    }
  }
}

function compare(a: readonly (string | number)[], b: readonly (string | number)[]): number {
  for (let index = 0; index < a.length; index += 1) {
    if (a[index] < b[index]) return -1;
    if (a[index] > b[index]) return 1;
  }
  return 0;
}

interface SketchTable<Row extends PeopleRow> {
  table: string;
  /** the primary key's columns, in its order */
  key: readonly string[];
  keyOf(row: Row): (string | number)[];
}

const PAGE_TABLE: SketchTable<PeopleRow & { pageId: string; minutes: number; slot: number }> = {
  table: 'scan_rollup_page',
  key: ['minutes', 'slot', 'page_id'],
  keyOf: (row) => [row.minutes, row.slot, row.pageId],
};
const REF_TABLE: SketchTable<PeopleRow & { pageId: string; ref: string; source: string; minutes: number; slot: number }> = {
  table: 'scan_rollup_ref',
  key: ['page_id', 'ref', 'minutes', 'slot', 'source'],
  keyOf: (row) => [row.pageId, row.ref, row.minutes, row.slot, row.source],
};

/**
 * Adds counts and merges sketches into the rows of one table. One upsert per row, in
 * primary-key order (concurrent ingests on PostgreSQL then lock contended rows in one
 * order and never deadlock): it adds the counts, inserts the delta's sketch when the row
 * is new, and answers the row's sketch, locked; a sketch that the delta changes is
 * written back by a second statement.
 */
async function upsertSketchRows<Row extends PeopleRow>(sql: TransactionSql, spec: SketchTable<Row>, rows: Row[]): Promise<void> {
  const sorted = rows.map((row) => ({ row, key: spec.keyOf(row) })).sort((a, b) => compare(a.key, b.key));
  const columns = [...spec.key, 'total', 'first_time', 'people'];
  const update = `UPDATE ${spec.table} SET people = ${sql.param(1)} WHERE ${spec.key.map((column, index) => `${column} = ${sql.param(index + 2)}`).join(' AND ')}`;
  for (const chunk of chunks(sorted)) {
    let n = 0;
    const values = chunk.map(() => `(${columns.map(() => sql.param(++n)).join(', ')})`).join(', ');
    const returned = await sql.query<Record<string, unknown>>(
      `INSERT INTO ${spec.table} (${columns.join(', ')}) VALUES ${values}
       ON CONFLICT (${spec.key.join(', ')}) DO UPDATE SET total = ${spec.table}.total + excluded.total, first_time = ${spec.table}.first_time + excluded.first_time
       RETURNING ${spec.key.join(', ')}, total, people`,
      chunk.flatMap(({ row, key }) => [...key, row.total, row.firstTime, row.sketch.serialize()]),
    );
    const byKey = new Map(chunk.map((entry) => [entry.key.join('\u0000'), entry]));
    const writes: { key: (string | number)[]; bytes: Buffer }[] = [];
    for (const stored of returned) {
      const key = spec.key.map((column) => (column === 'slot' || column === 'minutes' ? Number(stored[column]) : String(stored[column])));
      const entry = byKey.get(key.join('\u0000'));
      // Its total equals the delta's only when the row was just inserted, with the delta's sketch.
      if (!entry || Number(stored.total) === entry.row.total) continue;
      const sketch = PeopleSketch.deserialize(stored.people as Buffer | null);
      if (sketch.merge(entry.row.sketch)) writes.push({ key: entry.key, bytes: sketch.serialize() });
    }
    writes.sort((a, b) => compare(a.key, b.key));
    if (sql.kind === 'postgres' && writes.length > 1) {
      // The rows are locked already (by the upsert): one statement for them all, not one round trip each.
      const records = writes.map(({ key, bytes }) => ({
        ...Object.fromEntries(spec.key.map((column, index) => [column, key[index]])),
        people: byteaText(bytes),
      }));
      await sql.query(
        `UPDATE ${spec.table} SET people = w.people FROM json_populate_recordset(NULL::${spec.table}, $1::json) AS w
          WHERE ${spec.key.map((column) => `${spec.table}.${column} = w.${column}`).join(' AND ')}`,
        [JSON.stringify(records)],
      );
    } else for (const write of writes) await sql.query(update, [write.bytes, ...write.key]);
  }
}

async function upsertSourceRows(sql: TransactionSql, delta: RollupDelta): Promise<void> {
  const rows = [...delta.sources.values()]
    .map((row) => ({ row, key: [row.minutes, row.slot, row.pageId, row.source] }))
    .sort((a, b) => compare(a.key, b.key));
  for (const chunk of chunks(rows)) {
    let n = 0;
    const values = chunk.map(() => `(${[1, 2, 3, 4, 5].map(() => sql.param(++n)).join(', ')})`).join(', ');
    await sql.query(
      `INSERT INTO scan_rollup_source (minutes, slot, page_id, source, total) VALUES ${values}
       ON CONFLICT (minutes, slot, page_id, source) DO UPDATE SET total = scan_rollup_source.total + excluded.total`,
      chunk.flatMap(({ row, key }) => [...key, row.total]),
    );
  }
}

/** Writes a delta: the tables in one fixed order, each in key order. */
async function writeDelta(sql: TransactionSql, delta: RollupDelta): Promise<void> {
  delta.mergeFiner();
  await upsertSketchRows(sql, PAGE_TABLE, [...delta.pages.values()]);
  await upsertSketchRows(sql, REF_TABLE, [...delta.refs.values()]);
  await upsertSourceRows(sql, delta);
}

/**
 * Pending rows beyond which a transaction folds them into the rollup rows. Each fold reads
 * and rewrites the sketches of the rows it touches once for all the transactions since the
 * last; the statistics read at most about this many pending rows besides the rollup rows.
 */
export const COMPACT_PENDING_ROWS = 2_000;

/** Appends a transaction's groups to scan_rollup_pending. */
async function insertPending(sql: TransactionSql, groups: Group[]): Promise<void> {
  for (const chunk of chunks(groups)) {
    let n = 0;
    const values = chunk.map(() => `(${[1, 2, 3, 4, 5, 6, 7].map(() => sql.param(++n)).join(', ')})`).join(', ');
    await sql.query(
      `INSERT INTO scan_rollup_pending (page_id, ref, source, slot, total, first_time, people) VALUES ${values}`,
      chunk.flatMap((group) => [group.pageId, group.ref, group.source, group.slot, group.total, group.firstTime, group.sketch.serialize()]),
    );
  }
}

/** PostgreSQL: bytes as bytea's text form, for a bytea field of a JSON record (json_populate_recordset). */
function byteaText(bytes: Buffer): string {
  return `\\x${bytes.toString('hex')}`;
}

/**
 * PostgreSQL: the statement appending a transaction's groups, its values a JSON literal (it
 * goes with the COMMIT's round trip, a simple query: see TransactionSql.withCommit); answers
 * the ids of the rows.
 */
function pendingInsertOnPostgres(groups: Group[]): string {
  const records = groups.map((group) => ({
    page_id: group.pageId,
    ref: group.ref,
    source: group.source,
    slot: group.slot,
    total: group.total,
    first_time: group.firstTime,
    people: byteaText(group.sketch.serialize()),
  }));
  const columns = 'page_id, ref, source, slot, total, first_time, people';
  return `INSERT INTO scan_rollup_pending (${columns})
    SELECT ${columns} FROM json_populate_recordset(NULL::scan_rollup_pending, ${jsonLiteral(records)}::json) RETURNING id`;
}

/**
 * Folds every pending row into the rollup rows, in the caller's transaction; answers how
 * many it folded. DELETE … RETURNING claims them: on PostgreSQL a concurrent fold waits for
 * this one's commit and then finds them gone, so no row is added twice.
 */
export async function compactRollups(sql: TransactionSql): Promise<number> {
  const rows = await sql.query<{
    page_id: string;
    ref: string;
    source: string;
    slot: number | string;
    total: number | string;
    first_time: number | string;
    people: Uint8Array;
  }>(`DELETE FROM scan_rollup_pending RETURNING page_id, ref, source, slot, total, first_time, people`, []);
  if (rows.length === 0) return 0;
  // The rows of many transactions, of few (page, ref, source, slot): combined first, so that
  // each combination is added to its rows at every level once, not once per transaction.
  const combined = new ScanGroups();
  for (const row of rows) {
    const group = combined.groupOf(row.page_id, row.ref, sourceOfKey(row.source), Number(row.slot));
    group.total += Number(row.total);
    group.firstTime += Number(row.first_time);
    group.sketch.addSerialized(row.people);
  }
  const delta = new RollupDelta();
  for (const group of combined.groups) delta.addGroup(group);
  await writeDelta(sql, delta);
  return rows.length;
}

/**
 * The ingest step: the scans a transaction stored, appended to the pending rows in the
 * same transaction (a few small rows: no sketch is read or rewritten), folded into the
 * rollup rows once COMPACT_PENDING_ROWS of them have gathered: on SQLite, counted and folded
 * in the transaction; on PostgreSQL, told by the pending rows' ids and folded in a
 * transaction of its own beside the ingest (see apply).
 */
export class ScanRollups implements IngestStep {
  /** PostgreSQL: the fold under way in the background, if any (one at a time per process). */
  private folding?: Promise<void>;
  /** PostgreSQL: a fold fell due while one was under way; it runs once that one ends */
  private foldDue = false;

  constructor(
    private readonly db: Database,
    private readonly options: { compactAt?: number; logger?: Logger } = {},
  ) {}

  private get compactAt(): number {
    return this.options.compactAt ?? COMPACT_PENDING_ROWS;
  }

  async apply(sql: TransactionSql, stored: Scan[]): Promise<void> {
    const groups = groupScans(stored);
    if (sql.withCommit) {
      // PostgreSQL: no round trip of its own. The pending rows go with the COMMIT (nothing else
      // in the transaction reads them), and instead of counting them (a scan of the table at
      // every transaction), their ids say when to fold: every id is one row's, of exactly one
      // transaction of one instance, so about every compactAt rows one writer folds. The fold
      // reads and rewrites a few hundred rows' sketches (hundreds of milliseconds at thousands
      // of scans a second): in the ingest transaction it held every webhook of its process
      // back meanwhile, so it runs in a transaction of its own, while ingest goes on.
      sql.withCommit<{ id: number | string }>(pendingInsertOnPostgres(groups), (rows) => {
        if (rows.some(({ id }) => Number(id) % this.compactAt === 0)) this.foldApart();
      });
      return;
    }
    await insertPending(sql, groups);
    // page-scope exempt: ingest's own bookkeeping (when to fold), every page's pending rows; answers no request.
    const [{ pending }] = await sql.query<{ pending: number | string }>(`SELECT COUNT(*) AS pending FROM scan_rollup_pending`, []);
    if (Number(pending) >= this.compactAt) await compactRollups(sql);
  }

  /** Resolves once no fold of this process is under way (before the database is closed). */
  async settled(): Promise<void> {
    while (this.folding) await this.folding;
  }

  /**
   * Folds in a transaction of its own. One due while another is under way here runs right
   * after it, once: the one under way may not see the rows committed since its DELETE began,
   * and left for the next due fold they would let the pending rows grow to twice the bound.
   * DELETE … RETURNING claims the rows, so folds of other instances never add one twice. A
   * fold that fails leaves its rows to the next one.
   */
  private foldApart(): void {
    if (this.folding) {
      this.foldDue = true;
      return;
    }
    this.foldDue = false;
    this.folding = this.db
      // A transaction's EntityManager always has its QueryRunner.
      .transaction((manager) => compactRollups(queryRunnerSql(manager.queryRunner as QueryRunner)))
      .then(
        () => undefined,
        (error: unknown) => {
          this.options.logger?.warn(
            { error: error instanceof Error ? error.message : String(error) },
            'folding the pending rollup rows failed; the next fold takes them',
          );
        },
      )
      .finally(() => {
        this.folding = undefined;
        if (this.foldDue) this.foldApart();
      });
  }
}

/** Scans read per query of the backfill, and added to the rollups per write. */
const BACKFILL_READ_ROWS = 10_000;
const BACKFILL_WRITE_SCANS = 200_000;

/**
 * Builds the rollups of every scan stored (the migration that creates the tables runs
 * it; the benchmark seeds with it): the scans in id order, a delta written every
 * BACKFILL_WRITE_SCANS scans, so memory stays bounded whatever the table's size.
 */
export async function backfillRollups(sql: TransactionSql): Promise<number> {
  let after = '';
  let delta = new RollupDelta();
  let scans = 0;
  for (;;) {
    const rows = await sql.query<{
      id: string;
      page_id: string;
      ref: string;
      kind: string;
      source: string | null;
      sender_hash: string;
      occurred_at: number | string;
      // page-scope exempt: the backfill rebuilds every page's rollups from its scans; answers no request.
    }>(
      `SELECT id, page_id, ref, kind, source, sender_hash, occurred_at FROM scan WHERE id > ${sql.param(1)} ORDER BY id LIMIT ${BACKFILL_READ_ROWS}`,
      [after],
    );
    if (rows.length === 0) break;
    const grouped = new ScanGroups();
    for (const row of rows)
      grouped.add(row.page_id, row.ref, row.source, Number(row.occurred_at), row.sender_hash, row.kind === 'POSTBACK');
    for (const group of grouped.groups) delta.addGroup(group);
    scans += rows.length;
    after = rows[rows.length - 1].id;
    if (delta.size >= BACKFILL_WRITE_SCANS) {
      await writeDelta(sql, delta);
      delta = new RollupDelta();
    }
    if (rows.length < BACKFILL_READ_ROWS) break;
  }
  if (delta.size > 0) await writeDelta(sql, delta);
  return scans;
}

/** TransactionSql over a migration's QueryRunner. */
export function queryRunnerSql(queryRunner: QueryRunner): TransactionSql {
  const kind: DatabaseKind = queryRunner.connection.driver.options.type === 'postgres' ? 'postgres' : 'sqlite';
  return {
    kind,
    param: (n) => (kind === 'postgres' ? `$${n}` : '?'),
    query: async <Row>(sql: string, parameters: unknown[]) => {
      const result = await queryRunner.query(sql, parameters, true);
      return (result.records ?? []) as Row[];
    },
  };
}

/** The migration's backfill (src/db/migrations/1764400000000-ScanRollups.ts declares it). */
export const backfillRollupsInMigration = async (queryRunner: QueryRunner): Promise<void> => {
  await backfillRollups(queryRunnerSql(queryRunner));
};
