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

/** Scans grouped by (page, ref, source, 15 minutes): a transaction holds few groups. */
function groupScans(scans: readonly RollupScan[]): Group[] {
  const groups = new Map<string, Group>();
  for (const scan of scans) {
    const slot = slotStart(scan.occurredAt, SLOT_MS);
    const key = `${scan.pageId}\u0000${scan.ref}\u0000${scan.source}\u0000${slot}`;
    let group = groups.get(key);
    if (!group) {
      group = { pageId: scan.pageId, ref: scan.ref, source: scan.source, slot, total: 0, firstTime: 0, sketch: new PeopleSketch() };
      groups.set(key, group);
    }
    group.total += 1;
    if (scan.firstTime) group.firstTime += 1;
    group.sketch.add(personHash(scan.senderHash));
  }
  return [...groups.values()];
}

/** What a set of scans adds to the rollups, by row. */
class RollupDelta {
  readonly pages = new Map<string, PeopleRow & { pageId: string; minutes: number; slot: number }>();
  readonly refs = new Map<string, PeopleRow & { pageId: string; ref: string; source: string; minutes: number; slot: number }>();
  readonly sources = new Map<string, CountRow & { pageId: string; source: string; minutes: number; slot: number }>();
  size = 0;

  add(scans: readonly RollupScan[]): void {
    for (const group of groupScans(scans)) this.addGroup(group);
  }

  /** Adds a group to its rows at every level. */
  addGroup(group: Group): void {
    const { pageId, ref: refOfGroup, source: sourceOfGroup, total, firstTime, sketch } = group;
    this.size += total;
    for (let level = 0; level < LEVEL_MS.length; level += 1) {
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
      page.sketch.addAll(sketch);
      ref.sketch.addAll(sketch);
    }
  }
}

function emptyPeople(): PeopleRow {
  return { total: 0, firstTime: 0, sketch: new PeopleSketch() };
}

function getOrAdd<V>(map: Map<string, V>, key: string, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** What a rollup needs of a scan. */
interface RollupScan {
  pageId: string;
  /** refKey: '' for the static code */
  ref: string;
  /** sourceKey */
  source: string;
  senderHash: string;
  firstTime: boolean;
  occurredAt: number;
}

function rollupScanOf(scan: Scan): RollupScan {
  return {
    pageId: scan.pageId,
    ref: refKey(scan.ref),
    source: sourceKey(scan.source),
    senderHash: scan.senderHash,
    firstTime: scan.kind === 'POSTBACK',
    occurredAt: scan.occurredAt.getTime(),
  };
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
  const delta = new RollupDelta();
  for (const row of rows) {
    delta.addGroup({
      pageId: row.page_id,
      ref: row.ref,
      source: row.source,
      slot: Number(row.slot),
      total: Number(row.total),
      firstTime: Number(row.first_time),
      sketch: PeopleSketch.deserialize(row.people),
    });
  }
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
    const groups = groupScans(stored.map(rollupScanOf));
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
    }>(
      `SELECT id, page_id, ref, kind, source, sender_hash, occurred_at FROM scan WHERE id > ${sql.param(1)} ORDER BY id LIMIT ${BACKFILL_READ_ROWS}`,
      [after],
    );
    if (rows.length === 0) break;
    delta.add(
      rows.map((row) => ({
        pageId: row.page_id,
        ref: row.ref,
        source: sourceKey(row.source),
        senderHash: row.sender_hash,
        firstTime: row.kind === 'POSTBACK',
        occurredAt: Number(row.occurred_at),
      })),
    );
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
