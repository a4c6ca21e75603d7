import type BetterSqlite3 from 'better-sqlite3';
import type { EntityManager } from 'typeorm';
import { CODE_COLUMNS, codeRecordFromRow, type CodeRecord, type CodeRow } from '../codes/code.wire';
import { CLAIM_COUNTER_SQL, refCountOf, SET_COUNTER_SQL, type RefCount } from '../codes/ref-counter.store';
import type { Database, DatabaseKind } from '../db/database';
import { SqliteDurability } from '../db/sqlite-durability';
import { pageRefKey, refKey } from '../db/transformers';
import type { ScanEvent } from './scan-feed';
import type { Scan } from './scan.entity';

/**
 * SQL inside the transaction that stores scans, on either database: what another
 * capability needs to commit its own rows with the scans (statistics rollups, the
 * relay's outbox) without this folder knowing about it.
 */
export interface TransactionSql {
  readonly kind: DatabaseKind;
  /** the n-th (1-based) bind placeholder */
  param(n: number): string;
  /** runs one statement; answers its rows (a SELECT's, or a write's RETURNING rows) */
  query<Row = Record<string, unknown>>(sql: string, parameters: unknown[]): Promise<Row[]>;
}

/** Work committed in every transaction that stores scans (e.g. statistics rollups). */
export interface IngestStep {
  /** `stored`: the scans this transaction inserted (redeliveries left out), in arrival order */
  apply(sql: TransactionSql, stored: Scan[]): Promise<void>;
}

/** Work one request commits with its scans (e.g. the relay's outbox rows), even when it has no scans. */
export type AlongsideScans = (sql: TransactionSql) => Promise<void>;

/** The statements storing scans needs; one implementation per database. */
interface ScanStatements {
  /** the stream's last position; on PostgreSQL its row stays locked until commit, which orders every writer */
  claimStream(): Promise<number> | number;
  setStream(position: number): Promise<void> | void;
  /** writes each scan's streamSeq onto its stored row */
  numberScans(scans: Scan[]): Promise<void> | void;
  /** inserts the scans not stored yet (others are redeliveries); returns the ids inserted */
  insertScans(scans: Scan[]): Promise<Set<string>> | Set<string>;
  /**
   * The (page, ref) counters, created at zero when absent, in the order given (the lock
   * order); on PostgreSQL they stay locked until commit.
   */
  claimCounters(keys: CounterKey[]): Promise<RefCount[]> | RefCount[];
  /** writes the counters and copies each onto the code of its (page, ref); answers those codes, in order */
  setCounters(counters: (CounterKey & { count: RefCount })[]): Promise<(CodeRow | undefined)[]> | (CodeRow | undefined)[];
}

interface CounterKey {
  pageId: string;
  ref: string | null;
}

/** One request's share of a transaction. */
interface WriteRequest {
  scans: Scan[];
  alongside?: AlongsideScans;
}

/**
 * Stores the scans of several webhook requests in the current transaction: each
 * event once, each new scan counted on its (page, ref) and copied onto its code, then
 * the ingest steps and each request's own rows. Returns, per request, one event per new
 * scan carrying the code as it was right after that scan (running totals), so
 * subscribers applying events in order are exact.
 */
async function storeScans(
  statements: ScanStatements,
  sql: TransactionSql,
  steps: readonly IngestStep[],
  requests: WriteRequest[],
): Promise<ScanEvent[][]> {
  // Each id belongs to the first request of the group that carries it.
  const owned = requests.map(() => [] as Scan[]);
  const owners = new Set<string>();
  requests.forEach(({ scans }, index) => {
    for (const scan of scans) {
      if (owners.has(scan.id)) continue;
      owners.add(scan.id);
      owned[index].push(scan);
    }
  });
  // Inserted in id order, the whole group at once: one order for every transaction's
  // primary-key locks, so concurrent groups never wait on each other in a cycle. A scan
  // another transaction is inserting waits for it, then counts as a redelivery here.
  const all = owned.flat().sort((a, b) => (a.id < b.id ? -1 : 1));
  const stored = all.length === 0 ? new Set<string>() : await statements.insertScans(all);
  const inserted = owned.map((scans) => scans.filter((scan) => stored.has(scan.id)));

  // Running totals per (page, ref), in the order the scans arrived.
  const totals = new Map<string, { pageId: string; ref: string | null; count: RefCount }>();
  const after = new Map<Scan, RefCount>();
  const keysInLockOrder = [...new Set(inserted.flat().map((scan) => pageRefKey(scan.pageId, scan.ref)))].sort();
  const firstScanOf = new Map(inserted.flat().map((scan) => [pageRefKey(scan.pageId, scan.ref), scan] as const));
  // Claimed in one sorted order so that concurrent transactions never deadlock.
  const keys = keysInLockOrder.map((key) => firstScanOf.get(key) as Scan).map(({ pageId, ref }) => ({ pageId, ref }));
  const claimed = keys.length === 0 ? [] : await statements.claimCounters(keys);
  keys.forEach((key, index) => totals.set(keysInLockOrder[index], { ...key, count: claimed[index] }));
  for (const scan of inserted.flat()) {
    const total = totals.get(pageRefKey(scan.pageId, scan.ref)) as { count: RefCount };
    total.count = {
      scanCount: total.count.scanCount + 1,
      lastScannedAt: Math.max(total.count.lastScannedAt, scan.occurredAt.getTime()),
    };
    after.set(scan, total.count);
  }
  // Mapped once per (page, ref); each event then takes the counts as they were after its scan.
  const codes = new Map<string, CodeRecord | undefined>();
  const counters = keysInLockOrder.map((key) => totals.get(key) as CounterKey & { count: RefCount });
  const rows = counters.length === 0 ? [] : await statements.setCounters(counters);
  keysInLockOrder.forEach((key, index) => codes.set(key, rows[index] && codeRecordFromRow(rows[index])));
  const allInserted = inserted.flat();
  if (allInserted.length > 0) for (const step of steps) await step.apply(sql, allInserted);
  for (const request of requests) if (request.alongside) await request.alongside(sql);

  if (allInserted.length > 0) {
    // Last, just before the commit: from here on this transaction is the only one numbering
    // scans, so positions are contiguous and become visible in order. Taken after every
    // other lock (one order for all, so no deadlock) and held for three statements only.
    let position = Number(await statements.claimStream());
    for (const scan of allInserted) scan.streamSeq = ++position;
    await statements.numberScans(allInserted);
    await statements.setStream(position);
  }

  return inserted.map((scans) =>
    scans.map((scan) => eventOf(scan, codes.get(pageRefKey(scan.pageId, scan.ref)), after.get(scan) as RefCount)),
  );
}

function eventOf(scan: Scan, code: CodeRecord | undefined, countAfterScan: RefCount): ScanEvent {
  return {
    scan: {
      id: scan.id,
      pageId: scan.pageId,
      ref: scan.ref,
      kind: scan.kind,
      source: scan.source,
      occurredAt: scan.occurredAt.getTime(),
      receivedAt: scan.receivedAt.getTime(),
      streamSeq: scan.streamSeq,
    },
    code: code
      ? {
          ...code,
          scanCount: countAfterScan.scanCount,
          lastScannedAt: countAfterScan.lastScannedAt === 0 ? null : countAfterScan.lastScannedAt,
        }
      : null,
  };
}

function scanValues(scan: Scan): (string | number | null)[] {
  return [
    scan.id,
    scan.pageId,
    refKey(scan.ref),
    scan.kind,
    scan.source,
    scan.senderHash,
    scan.occurredAt.getTime(),
    scan.receivedAt.getTime(),
  ];
}

const SCAN_VALUE_COUNT = 8;
/** Multi-row inserts: one statement per chunk rather than per scan. */
const INSERT_CHUNK_SIZES = [100, 20, 5, 1];

const INSERT_SCANS = (p: (n: number) => string, rows: number) =>
  `INSERT INTO scan (id, page_id, ref, kind, source, sender_hash, occurred_at, received_at)
   VALUES ${Array.from({ length: rows }, (_, row) => `(${Array.from({ length: SCAN_VALUE_COUNT }, (_, column) => p(row * SCAN_VALUE_COUNT + column + 1)).join(', ')})`).join(', ')}
   ON CONFLICT (id) DO NOTHING RETURNING id`;
const CLAIM_STREAM = (postgres: boolean) =>
  // FOR UPDATE is implied by the UPDATE on PostgreSQL; on SQLite, BEGIN IMMEDIATE already excludes other writers.
  postgres ? `UPDATE scan_stream SET position = position WHERE id = 1 RETURNING position` : `SELECT position FROM scan_stream WHERE id = 1`;
const SET_STREAM = (p: (n: number) => string) => `UPDATE scan_stream SET position = ${p(1)} WHERE id = 1`;
interface CounterRow {
  page_id: string;
  ref: string;
  scan_count: number | string;
  last_scanned_at: number | string;
}

/*
 * The counters of a group in three statements on PostgreSQL (a round trip each) rather than
 * three per code: a group of a busy page touches tens of codes. The claim's rows are locked
 * in the order of its VALUES, which is the sorted lock order.
 */
const CLAIM_COUNTERS = (p: (n: number) => string, rows: number) =>
  `INSERT INTO ref_counter (page_id, ref, scan_count, last_scanned_at)
   VALUES ${Array.from({ length: rows }, (_, row) => `(${p(2 * row + 1)}, ${p(2 * row + 2)}, 0, 0)`).join(', ')}
   ON CONFLICT (page_id, ref) DO UPDATE SET scan_count = ref_counter.scan_count
   RETURNING page_id, ref, scan_count, last_scanned_at`;
const COUNTER_VALUES = (p: (n: number) => string, rows: number) =>
  `(VALUES ${Array.from({ length: rows }, (_, row) => `(${p(4 * row + 1)}::varchar, ${p(4 * row + 2)}::varchar, ${p(4 * row + 3)}::bigint, ${p(4 * row + 4)}::bigint)`).join(', ')})
   AS counted (page_id, ref, scan_count, last_scanned_at)`;
const SET_COUNTERS = (p: (n: number) => string, rows: number) =>
  `UPDATE ref_counter SET scan_count = counted.scan_count, last_scanned_at = counted.last_scanned_at
   FROM ${COUNTER_VALUES(p, rows)} WHERE ref_counter.page_id = counted.page_id AND ref_counter.ref = counted.ref`;
const SET_CODE_COUNTS = (p: (n: number) => string, rows: number) =>
  `UPDATE code SET scan_count = counted.scan_count, last_scanned_at = counted.last_scanned_at
   FROM ${COUNTER_VALUES(p, rows)} WHERE code.page_id = counted.page_id AND code.ref = counted.ref
   RETURNING ${CODE_COLUMNS.split(', ')
     .map((column) => `code.${column}`)
     .join(', ')}`;

/** One statement per chunk: a CASE over the ids (the same SQL on both databases). */
const NUMBER_SCANS = (p: (n: number) => string, rows: number) =>
  `UPDATE scan SET stream_seq = CASE id ${Array.from({ length: rows }, (_, row) => `WHEN ${p(2 * row + 1)} THEN CAST(${p(2 * row + 2)} AS bigint)`).join(' ')} END
   WHERE id IN (${Array.from({ length: rows }, (_, row) => p(2 * rows + row + 1)).join(', ')})`;
const numberValues = (scans: Scan[]) => [...scans.flatMap((scan) => [scan.id, scan.streamSeq]), ...scans.map((scan) => scan.id)];
const SET_CODE_COUNT = (p: (n: number) => string) =>
  `UPDATE code SET scan_count = ${p(1)}, last_scanned_at = ${p(2)} WHERE page_id = ${p(3)} AND ref = ${p(4)}
   RETURNING ${CODE_COLUMNS}`;

/** Splits scans (or ids) into chunks of the prepared sizes, largest first. */
function* chunksOf<T>(scans: T[]): Generator<T[]> {
  let offset = 0;
  for (const size of INSERT_CHUNK_SIZES) {
    while (scans.length - offset >= size) {
      yield scans.slice(offset, offset + size);
      offset += size;
    }
  }
}

/** On PostgreSQL, through TypeORM's connection of the current transaction (its SQL is PostgreSQL's). */
class ManagerStatements implements ScanStatements {
  private readonly p: (n: number) => string;

  constructor(
    private readonly manager: EntityManager,
    private readonly db: Database,
    /** for the statements whose rows are read: the same connection, with one result shape on both drivers */
    private readonly sql: ManagerSql,
  ) {
    this.p = (n) => db.param(n);
  }

  private rows<Row>(sql: string, parameters: unknown[]): Promise<Row[]> {
    return this.sql.query<Row>(sql, parameters);
  }

  async claimStream(): Promise<number> {
    const rows = await this.rows<{ position: number | string }>(CLAIM_STREAM(this.db.kind === 'postgres'), []);
    return Number(rows[0].position);
  }

  async setStream(position: number): Promise<void> {
    await this.manager.query(SET_STREAM(this.p), [position]);
  }

  async numberScans(scans: Scan[]): Promise<void> {
    for (const chunk of chunksOf(scans)) await this.manager.query(NUMBER_SCANS(this.p, chunk.length), numberValues(chunk));
  }

  async insertScans(scans: Scan[]): Promise<Set<string>> {
    const inserted = new Set<string>();
    for (const chunk of chunksOf(scans)) {
      const returned: { id: string }[] = await this.manager.query(INSERT_SCANS(this.p, chunk.length), chunk.flatMap(scanValues));
      for (const { id } of returned) inserted.add(id);
    }
    return inserted;
  }

  async claimCounters(keys: CounterKey[]): Promise<RefCount[]> {
    const counts = new Map<string, RefCount>();
    for (const chunk of chunksOf(keys)) {
      const rows = await this.rows<CounterRow>(
        CLAIM_COUNTERS(this.p, chunk.length),
        chunk.flatMap(({ pageId, ref }) => [pageId, refKey(ref)]),
      );
      for (const row of rows) counts.set(pageRefKey(row.page_id, row.ref), refCountOf(row));
    }
    return keys.map(({ pageId, ref }) => counts.get(pageRefKey(pageId, ref)) as RefCount);
  }

  async setCounters(counters: (CounterKey & { count: RefCount })[]): Promise<(CodeRow | undefined)[]> {
    const codes = new Map<string, CodeRow>();
    for (const chunk of chunksOf(counters)) {
      const values = chunk.flatMap(({ pageId, ref, count }) => [pageId, refKey(ref), count.scanCount, count.lastScannedAt]);
      await this.rows(SET_COUNTERS(this.p, chunk.length), values);
      for (const row of await this.rows<CodeRow>(SET_CODE_COUNTS(this.p, chunk.length), values))
        codes.set(pageRefKey(row.page_id, row.ref), row);
    }
    return counters.map(({ pageId, ref }) => codes.get(pageRefKey(pageId, ref)));
  }
}

/**
 * Prepared statements on better-sqlite3 itself: the ORM's per-query overhead is most
 * of the cost of a scan otherwise.
 */
class SqliteStatements implements ScanStatements {
  private readonly inserts: Map<number, BetterSqlite3.Statement>;
  private readonly numberStatements: Map<number, BetterSqlite3.Statement>;
  private readonly claimStreamStatement: BetterSqlite3.Statement;
  private readonly setStreamStatement: BetterSqlite3.Statement;
  private readonly claim: BetterSqlite3.Statement;
  private readonly setRefCounter: BetterSqlite3.Statement;
  private readonly setCodeCount: BetterSqlite3.Statement;

  constructor(handle: BetterSqlite3.Database) {
    const p = () => '?';
    this.inserts = new Map(INSERT_CHUNK_SIZES.map((size) => [size, handle.prepare(INSERT_SCANS(p, size))]));
    this.numberStatements = new Map(INSERT_CHUNK_SIZES.map((size) => [size, handle.prepare(NUMBER_SCANS(p, size))]));
    this.claimStreamStatement = handle.prepare(CLAIM_STREAM(false));
    this.setStreamStatement = handle.prepare(SET_STREAM(p));
    this.claim = handle.prepare(CLAIM_COUNTER_SQL(p));
    this.setRefCounter = handle.prepare(SET_COUNTER_SQL(p));
    this.setCodeCount = handle.prepare(SET_CODE_COUNT(p));
  }

  claimStream(): number {
    return Number((this.claimStreamStatement.get() as { position: number }).position);
  }

  setStream(position: number): void {
    this.setStreamStatement.run(position);
  }

  numberScans(scans: Scan[]): void {
    for (const chunk of chunksOf(scans)) (this.numberStatements.get(chunk.length) as BetterSqlite3.Statement).run(...numberValues(chunk));
  }

  insertScans(scans: Scan[]): Set<string> {
    const inserted = new Set<string>();
    for (const chunk of chunksOf(scans)) {
      const statement = this.inserts.get(chunk.length) as BetterSqlite3.Statement;
      for (const { id } of statement.all(...chunk.flatMap(scanValues)) as { id: string }[]) inserted.add(id);
    }
    return inserted;
  }

  // One prepared statement per code: in process, a call costs what a batch would.
  claimCounters(keys: CounterKey[]): RefCount[] {
    return keys.map(({ pageId, ref }) =>
      refCountOf(this.claim.get(pageId, refKey(ref)) as { scan_count: number; last_scanned_at: number }),
    );
  }

  setCounters(counters: (CounterKey & { count: RefCount })[]): (CodeRow | undefined)[] {
    return counters.map(({ pageId, ref, count }) => {
      const values = [count.scanCount, count.lastScannedAt, pageId, refKey(ref)];
      this.setRefCounter.run(...values);
      return this.setCodeCount.get(...values) as CodeRow | undefined;
    });
  }
}

/** TransactionSql on the connection of a TypeORM transaction. */
class ManagerSql implements TransactionSql {
  readonly kind: DatabaseKind;

  constructor(
    private readonly manager: EntityManager,
    private readonly db: Database,
  ) {
    this.kind = db.kind;
  }

  param(n: number): string {
    return this.db.param(n);
  }

  async query<Row>(sql: string, parameters: unknown[]): Promise<Row[]> {
    // The structured result has the same shape on both drivers (a plain query answers
    // an UPDATE on PostgreSQL with [rows, count]).
    const runner = this.manager.queryRunner;
    if (!runner) throw new Error('ManagerSql needs the manager of a transaction');
    const result = await runner.query(sql, parameters, true);
    return (result.records ?? []) as Row[];
  }
}

/** TransactionSql on better-sqlite3 itself, statements prepared once. */
class SqliteSql implements TransactionSql {
  readonly kind = 'sqlite';
  private readonly prepared = new Map<string, BetterSqlite3.Statement>();

  constructor(private readonly handle: BetterSqlite3.Database) {}

  param(): string {
    return '?';
  }

  async query<Row>(sql: string, parameters: unknown[]): Promise<Row[]> {
    let statement = this.prepared.get(sql);
    if (!statement) {
      statement = this.handle.prepare(sql);
      this.prepared.set(sql, statement);
    }
    if (statement.reader) return statement.all(...parameters) as Row[];
    statement.run(...parameters);
    return [];
  }
}

/**
 * How long a commit waits for another process's write lock on the SQLite file before it
 * fails (the webhook then answers 500, and Meta retries).
 */
const SQLITE_LOCK_WAIT_MS = 5_000;

function isSqliteBusy(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_BUSY';
}

/**
 * BEGIN IMMEDIATE, waiting for a lock held by another process without blocking the event
 * loop: better-sqlite3 waits out its busy_timeout synchronously, which would stop every
 * request of this process (health checks included) for as long. So the attempt itself
 * does not wait (busy_timeout 0), and the wait between attempts is a timer.
 */
async function beginImmediate(handle: BetterSqlite3.Database): Promise<void> {
  const deadline = Date.now() + SQLITE_LOCK_WAIT_MS;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const busyTimeout = handle.pragma('busy_timeout', { simple: true }) as number;
    handle.pragma('busy_timeout = 0');
    try {
      handle.exec('BEGIN IMMEDIATE');
      return;
    } catch (error) {
      if (!isSqliteBusy(error) || Date.now() + delay > deadline) throw error;
    } finally {
      handle.pragma(`busy_timeout = ${busyTimeout}`);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** Caps one group commit, so a flood of requests still commits in bounded steps. */
const MAX_SCANS_PER_COMMIT = 20_000;

type Outcome = { ok: true; events: ScanEvent[] } | { ok: false; error: unknown };

interface PendingWrite extends WriteRequest {
  resolve: (events: ScanEvent[]) => void;
  reject: (error: unknown) => void;
}

/**
 * Writes scans durably and resolves each request only after its commit.
 *
 * Requests arriving together share one transaction (group commit), on both databases:
 * the commit (an fsync on SQLite, a round trip and a WAL flush on PostgreSQL) and the
 * (page, ref) counter rows that every scan of a popular code waits for are paid once per
 * group, not per request. One group is written at a time; the next forms meanwhile. On a
 * SQLite file the fsync of a commit runs off the event loop (SqliteDurability), while the
 * next group is written; a request resolves once its commit is on disk.
 * When a group fails, each of its requests is retried alone, so one bad request cannot
 * fail the others.
 */
export class ScanWriter {
  private readonly sqliteStatements?: SqliteStatements;
  private readonly sqliteSql?: SqliteSql;
  /** SQLite file: commits fsynced off the event loop, before their requests resolve. */
  private readonly durability?: SqliteDurability;
  /**
   * The first stream position of each transaction committed here whose requests have not
   * yet had their events (to publish them), with how many such transactions have it (a
   * rolled-back one's positions are taken again by the next): see unpublishedFrom.
   */
  private readonly unpublished = new Map<number, number>();
  private pending: PendingWrite[] = [];
  private writing = false;
  private flushScheduled = false;

  constructor(
    private readonly db: Database,
    private readonly steps: readonly IngestStep[] = [],
  ) {
    const handle = db.sqliteHandle();
    if (handle) {
      this.sqliteStatements = new SqliteStatements(handle);
      this.sqliteSql = new SqliteSql(handle);
      this.durability = SqliteDurability.of(handle);
    }
  }

  /** Stores `scans` (and commits `alongside` with them); resolves with the events of the scans that were new. */
  write(scans: Scan[], alongside?: AlongsideScans): Promise<ScanEvent[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ scans, resolve, reject, ...(alongside ? { alongside } : {}) });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.writing || this.pending.length === 0) return;
    this.flushScheduled = true;
    // Let every request already received join this commit.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    this.writing = true;
    const group: PendingWrite[] = [];
    let size = 0;
    while (this.pending.length > 0 && (group.length === 0 || size + this.pending[0].scans.length <= MAX_SCANS_PER_COMMIT)) {
      const request = this.pending.shift() as PendingWrite;
      size += request.scans.length;
      group.push(request);
    }
    let outcomes: Outcome[];
    const marked: number[] = [];
    try {
      outcomes = await this.commitGroup(group, marked);
    } finally {
      // The next group is written while this one is flushed to disk.
      this.writing = false;
      this.scheduleFlush();
    }
    if (this.durability && outcomes.some((outcome) => outcome.ok)) {
      try {
        await this.durability.flush();
      } catch (error) {
        // Committed but maybe not on disk: not acknowledged (a redelivery counts as a duplicate).
        outcomes = outcomes.map((outcome) => (outcome.ok ? { ok: false, error } : outcome));
      }
    }
    group.forEach((request, index) => {
      const outcome = outcomes[index];
      if (outcome.ok) request.resolve(outcome.events);
      else request.reject(outcome.error);
    });
    // Each request's continuation publishes its events before the next turn of the event loop.
    if (marked.length > 0) setImmediate(() => marked.forEach((position) => this.unmark(position)));
  }

  /**
   * The first stream position committed here whose events have not been handed to their
   * requests yet (their commit is being made durable), if any. The live feed reads the
   * database no further than the position before it: those scans reach subscribers as their
   * requests publish them, with their code as it was right after each, and only once durable.
   */
  unpublishedFrom(): number | undefined {
    let first: number | undefined;
    for (const position of this.unpublished.keys()) if (first === undefined || position < first) first = position;
    return first;
  }

  private unmark(position: number): void {
    const count = this.unpublished.get(position) ?? 0;
    if (count <= 1) this.unpublished.delete(position);
    else this.unpublished.set(position, count - 1);
  }

  /** Marks a transaction's new positions as unpublished, before it commits (see unpublishedFrom). */
  private markUnpublished(stored: ScanEvent[][], marked: number[]): void {
    let first: number | undefined;
    for (const events of stored)
      for (const event of events) if (first === undefined || event.scan.streamSeq < first) first = event.scan.streamSeq;
    if (first === undefined) return;
    this.unpublished.set(first, (this.unpublished.get(first) ?? 0) + 1);
    marked.push(first);
  }

  /** Commits a group, or each of its requests alone when the group fails; settles nothing. */
  private async commitGroup(group: PendingWrite[], marked: number[]): Promise<Outcome[]> {
    try {
      const events = await this.commit(group, marked);
      return events.map((each) => ({ ok: true, events: each }));
    } catch (error) {
      // Alone, each would wait for the same lock again: only a request's own failure is worth isolating.
      if (group.length === 1 || isSqliteBusy(error)) return group.map(() => ({ ok: false, error }));
      const outcomes: Outcome[] = [];
      for (const request of group) {
        outcomes.push(
          await this.commit([request], marked).then(
            ([events]): Outcome => ({ ok: true, events }),
            (alone: unknown): Outcome => ({ ok: false, error: alone }),
          ),
        );
      }
      return outcomes;
    }
  }

  private commit(group: WriteRequest[], marked: number[]): Promise<ScanEvent[][]> {
    if (!this.sqliteStatements) {
      return this.db.transaction(async (manager) => {
        const sql = new ManagerSql(manager, this.db);
        const stored = await storeScans(new ManagerStatements(manager, this.db, sql), sql, this.steps, group);
        this.markUnpublished(stored, marked);
        return stored;
      });
    }
    const statements = this.sqliteStatements;
    const sql = this.sqliteSql as SqliteSql;
    const transaction = async (): Promise<ScanEvent[][]> => {
      const handle = this.db.sqliteHandle() as BetterSqlite3.Database;
      await beginImmediate(handle);
      try {
        const stored = await storeScans(statements, sql, this.steps, group);
        this.markUnpublished(stored, marked);
        handle.exec('COMMIT');
        return stored;
      } catch (error) {
        if (handle.inTransaction) handle.exec('ROLLBACK');
        throw error;
      }
    };
    const durability = this.durability;
    return this.db.exclusive(() => (durability ? durability.commit(transaction) : transaction()));
  }
}
