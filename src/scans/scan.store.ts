import type BetterSqlite3 from 'better-sqlite3';
import type { QueryConfig, QueryResult } from 'pg';
import { CODE_COLUMNS, codeRecordFromRow, type CodeRecord, type CodeRow } from '../codes/code.wire';
import { CLAIM_COUNTER_SQL, refCountOf, SET_COUNTER_SQL, type RefCount } from '../codes/ref-counter.store';
import { discardConnection, type Database, type DatabaseKind, type PostgresConnection } from '../db/database';
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
  /**
   * PostgreSQL only (absent on SQLite): sends `sql` (one statement, no parameters: its values
   * are literals, see jsonLiteral) in the transaction's last round trip, before the rows every
   * writer waits for are claimed, instead of a round trip of its own while the transaction
   * stays open. `onCommitted` gets its rows once the transaction has committed (never when it
   * fails). For writes whose answer the transaction itself does not need.
   */
  withCommit?<Row = Record<string, unknown>>(sql: string, onCommitted?: (rows: Row[]) => void): void;
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
  /**
   * The transaction's first statement (on PostgreSQL it carries the BEGIN, even with no scans):
   * inserts the scans not stored yet (others are redeliveries); returns the ids inserted.
   * `scans` come in arrival order. It may number the new scans in the stream already (their
   * streamSeq set, in arrival order), when its transaction is the only writer from its first
   * statement on (SQLite); on PostgreSQL scan_ingest inserts them, numbered, in finish.
   */
  insertScans(scans: Scan[]): Promise<Set<string>> | Set<string>;
  /**
   * The end of the transaction, where every writer of every instance meets: claims the
   * (page, ref) counters in the order given (the lock order; created at zero when absent),
   * adds the scans to them and copies them onto their codes, then numbers `scans` after
   * the stream's last position and advances it, unless insertScans did. On PostgreSQL those
   * rows stay locked until commit, which orders every writer; there it is one round trip,
   * with the COMMIT.
   */
  finish(counters: CounterDelta[], scans: Scan[]): Promise<Finished> | Finished;
}

interface CounterKey {
  pageId: string;
  ref: string | null;
}

interface CounterDelta extends CounterKey {
  /** how many scans this transaction adds */
  scans: number;
  /** the latest of their times, epoch ms */
  last: number;
}

interface Finished {
  /** each counter as it was before this transaction, in the order given */
  before: RefCount[];
  /** the code of each counter's (page, ref) with the new counts, in the order given */
  codes: (CodeRow | undefined)[];
  /** the stream's position before the first scan numbered (each scan's streamSeq is set) */
  base: number;
}

/** One request's share of a transaction. */
interface WriteRequest {
  scans: Scan[];
  alongside?: AlongsideScans;
}

/**
 * Stores the scans of several webhook requests in the current transaction: each
 * event once, each request's own rows, the ingest steps, then each new scan counted on its
 * (page, ref) and copied onto its code, and numbered in the stream. Returns, per request,
 * one event per new scan carrying the code as it was right after that scan (running
 * totals), so subscribers applying events in order are exact.
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
  // The whole group at once, in arrival order (the order of their stream positions).
  const stored = await statements.insertScans(owned.flat());
  const inserted = owned.map((scans) => scans.filter((scan) => stored.has(scan.id)));
  const allInserted = inserted.flat();

  // Rows no other transaction writes first, then the rows others wait for, each as late as
  // it can be: what every transaction locks is held for the shortest time.
  for (const request of requests) if (request.alongside) await request.alongside(sql);
  if (allInserted.length === 0) return inserted.map(() => []);
  for (const step of steps) await step.apply(sql, allInserted);

  // Per (page, ref): how many scans and the latest, claimed in one sorted order so that
  // concurrent transactions never deadlock.
  const deltas = new Map<string, CounterDelta>();
  for (const scan of allInserted) {
    const key = pageRefKey(scan.pageId, scan.ref);
    const delta = deltas.get(key) ?? { pageId: scan.pageId, ref: scan.ref, scans: 0, last: 0 };
    delta.scans += 1;
    delta.last = Math.max(delta.last, scan.occurredAt.getTime());
    deltas.set(key, delta);
  }
  const keysInLockOrder = [...deltas.keys()].sort();
  // From here on this transaction is the only one numbering scans, so positions are
  // contiguous and become visible in order.
  const finished = await statements.finish(
    keysInLockOrder.map((key) => deltas.get(key) as CounterDelta),
    allInserted,
  );

  // Running totals per (page, ref), in the order the scans arrived; each event takes the
  // counts as they were after its scan.
  const totals = new Map(keysInLockOrder.map((key, index) => [key, finished.before[index]] as const));
  const codes = new Map(keysInLockOrder.map((key, index) => [key, finished.codes[index] && codeRecordFromRow(finished.codes[index])]));
  return inserted.map((scans) =>
    scans.map((scan) => {
      const key = pageRefKey(scan.pageId, scan.ref);
      const before = totals.get(key) as RefCount;
      const after = { scanCount: before.scanCount + 1, lastScannedAt: Math.max(before.lastScannedAt, scan.occurredAt.getTime()) };
      totals.set(key, after);
      return eventOf(scan, codes.get(key), after);
    }),
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
/** Multi-row inserts on SQLite: one prepared statement per chunk rather than per scan. */
const INSERT_CHUNK_SIZES = [100, 20, 5, 1];

const SCAN_COLUMNS = 'id, page_id, ref, kind, source, sender_hash, occurred_at, received_at';
// BEGIN IMMEDIATE already excludes other writers on SQLite.
const CLAIM_STREAM = `SELECT position FROM scan_stream WHERE id = 1`;
const SET_STREAM = `UPDATE scan_stream SET position = ? WHERE id = 1`;
/** SQLite: scans inserted with their stream position. */
const INSERT_NUMBERED_SCANS = (rows: number) =>
  `INSERT INTO scan (${SCAN_COLUMNS}, stream_seq)
   VALUES ${Array.from({ length: rows }, () => `(${Array.from({ length: SCAN_VALUE_COUNT + 1 }, () => '?').join(', ')})`).join(', ')}
   ON CONFLICT (id) DO NOTHING RETURNING id`;
const numberedScanValues = (scan: Scan) => [...scanValues(scan), scan.streamSeq];
const RENUMBER_SCAN = `UPDATE scan SET stream_seq = ? WHERE id = ?`;
const SET_CODE_COUNT = `UPDATE code SET scan_count = ?, last_scanned_at = ? WHERE page_id = ? AND ref = ? RETURNING ${CODE_COLUMNS}`;

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

interface CounterRow {
  page_id: string;
  ref: string;
  scan_count: number | string;
  last_scanned_at: number | string;
}

/** What scan_ingest answers (migration 1764660000000-IngestOneTrip). */
interface IngestTail {
  /** in the order of the counters given */
  counters: CounterRow[];
  /** in the order of the counters given, null where the (page, ref) has no code */
  codes: (CodeRow | null)[];
  base: number | string | null;
}

const QUOTE = /'/g;
const BACKSLASH = /\\/g;

/**
 * A string as an SQL literal, exactly as pg's escapeLiteral writes it (quotes doubled; with a
 * backslash, an E'' literal with backslashes doubled, right whatever standard_conforming_strings
 * says). escapeLiteral appends one character at a time: on the literals of a group of scans
 * (tens of kilobytes) that was a tenth of a busy gateway's time, most of it in the garbage
 * collector.
 */
export function sqlLiteral(text: string): string {
  const quoted = `'${text.replace(QUOTE, "''")}'`;
  return text.includes('\\') ? ` E${quoted.replace(BACKSLASH, '\\\\')}` : quoted;
}

/** A lone surrogate as JSON.stringify escapes it. */
const LONE_SURROGATE_ESCAPE = /\\ud[89a-f]/i;

/**
 * A value as a JSON literal of a simple query (which has no parameters). Strings are made
 * well-formed as UTF-8 encoding makes a bound parameter (a lone surrogate becomes U+FFFD):
 * PostgreSQL would refuse JSON's escape of it.
 */
export const jsonLiteral = (value: unknown) => {
  // JSON.stringify writes a lone surrogate as an escape (\udXXX): only then are the strings
  // made well-formed one by one (a backslash followed by "ud8…" in a string merely takes this
  // slower path too).
  const text = JSON.stringify(value);
  return sqlLiteral(
    LONE_SURROGATE_ESCAPE.test(text)
      ? JSON.stringify(value, (_key, item: unknown) => (typeof item === 'string' ? Buffer.from(item, 'utf8').toString('utf8') : item))
      : text,
  );
};

/** The pg connection under a TypeORM query runner: simple queries (several statements, no parameters) or prepared ones. */
interface PgConnection extends PostgresConnection {
  query(sql: string | QueryConfig): Promise<QueryResult | QueryResult[]>;
}

/** The rows of a query's last statement (a simple query of several statements answers one result each). */
function lastRows<Row>(answered: QueryResult | QueryResult[]): Row[] {
  return (Array.isArray(answered) ? answered[answered.length - 1] : answered).rows as Row[];
}

/** SQLSTATE of scan_ingest when a scan it was given is stored already (migration 1764660000000-IngestOneTrip). */
const STORED_ALREADY = 'MC001';

function isStoredAlready(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === STORED_ALREADY;
}

/**
 * On PostgreSQL, on a connection this writer holds for the transaction: the whole transaction
 * is one round trip (BEGIN, the statements deferred to the commit, scan_ingest, COMMIT), unless
 * an ingest step or `alongside` needs an answer before (then the BEGIN goes first, alone).
 * The scans are counted as new, except those known to be stored already (`storedAlready`): a
 * scan stored since makes scan_ingest fail (STORED_ALREADY), and the transaction is made again
 * knowing it (commitOnPostgres).
 */
class PostgresStatements implements ScanStatements {
  /** the last statement went with the COMMIT, which succeeded */
  committed = false;

  constructor(
    private readonly connection: PgConnection,
    private readonly sql: PgSql,
    private readonly storedAlready: ReadonlySet<string>,
  ) {}

  /** No round trip: the scans are inserted by scan_ingest, numbered (see finish). */
  insertScans(scans: Scan[]): Set<string> {
    return new Set(scans.filter((scan) => !this.storedAlready.has(scan.id)).map((scan) => scan.id));
  }

  /**
   * scan_ingest and the COMMIT in one round trip: the rows it locks (every writer's) are released
   * as soon as PostgreSQL has run it, not a round trip through this process later. A simple
   * query has no parameters, so its two arguments are JSON literals.
   */
  async finish(counters: CounterDelta[], scans: Scan[]): Promise<Finished> {
    const counterJson = counters.map(({ pageId, ref, scans: count, last }) => ({ page_id: pageId, ref: refKey(ref), scans: count, last }));
    const columns = SCAN_COLUMNS.split(', ');
    const records = scans.map((scan) => {
      const values = scanValues(scan);
      return Object.fromEntries(columns.map((column, index) => [column, values[index]]));
    });
    const results = await this.commitWith(`SELECT scan_ingest(${jsonLiteral(records)}::json, ${jsonLiteral(counterJson)}::json) AS tail`);
    const tail = ((results[0] as QueryResult).rows[0] as { tail: IngestTail }).tail;
    const base = Number(tail.base ?? 0);
    scans.forEach((scan, index) => (scan.streamSeq = base + index + 1));
    return { before: tail.counters.map(refCountOf), codes: tail.codes.map((row) => row ?? undefined), base };
  }

  /** The COMMIT, with the statements deferred to it (PgSql.withCommit): when the transaction had no `finish`. */
  async commit(): Promise<void> {
    await this.commitWith();
  }

  /**
   * One simple query: the BEGIN when not sent yet, the deferred statements, `last` (when given),
   * then the COMMIT; nothing at all when the transaction has nothing to write. Answers the
   * results after the deferred ones'.
   */
  private async commitWith(last?: string): Promise<(QueryResult | undefined)[]> {
    const deferred = this.sql.takeDeferred();
    const begin = !this.sql.begun;
    if (begin && deferred.length === 0 && last === undefined) {
      this.committed = true;
      return [];
    }
    this.sql.begun = true;
    const texts = [...(begin ? ['BEGIN'] : []), ...deferred.map(({ sql }) => sql), ...(last === undefined ? [] : [last]), 'COMMIT'];
    const answered = await this.connection.query(texts.join(';\n'));
    this.committed = true;
    const results = (Array.isArray(answered) ? answered : [answered]).slice(begin ? 1 : 0);
    deferred.forEach(({ onCommitted }, index) => onCommitted?.(results[index].rows));
    return results.slice(deferred.length);
  }
}

/**
 * Prepared statements on better-sqlite3 itself: the ORM's per-query overhead is most
 * of the cost of a scan otherwise. One statement per code: in process, a call costs what
 * a batch would.
 */
class SqliteStatements implements ScanStatements {
  private readonly inserts: Map<number, BetterSqlite3.Statement>;
  private readonly renumber: BetterSqlite3.Statement;
  private readonly claimStream: BetterSqlite3.Statement;
  private readonly setStream: BetterSqlite3.Statement;
  private readonly claim: BetterSqlite3.Statement;
  private readonly setRefCounter: BetterSqlite3.Statement;
  private readonly setCodeCount: BetterSqlite3.Statement;

  constructor(handle: BetterSqlite3.Database) {
    const p = () => '?';
    this.inserts = new Map(INSERT_CHUNK_SIZES.map((size) => [size, handle.prepare(INSERT_NUMBERED_SCANS(size))]));
    this.renumber = handle.prepare(RENUMBER_SCAN);
    this.claimStream = handle.prepare(CLAIM_STREAM);
    this.setStream = handle.prepare(SET_STREAM);
    this.claim = handle.prepare(CLAIM_COUNTER_SQL(p));
    this.setRefCounter = handle.prepare(SET_COUNTER_SQL(p));
    this.setCodeCount = handle.prepare(SET_CODE_COUNT);
  }

  /**
   * Numbers the scans as it inserts them (BEGIN IMMEDIATE made this transaction the only
   * writer, so the stream's position cannot move under it): each row is written once, where
   * inserting and then setting its position rewrote it in both indexes on the position.
   * Redeliveries in the group leave holes in the numbers given; then the new scans are
   * numbered again, contiguously.
   */
  insertScans(scans: Scan[]): Set<string> {
    const inserted = new Set<string>();
    if (scans.length === 0) return inserted;
    const base = Number((this.claimStream.get() as { position: number }).position);
    scans.forEach((scan, index) => (scan.streamSeq = base + index + 1));
    for (const chunk of chunksOf(scans)) {
      const statement = this.inserts.get(chunk.length) as BetterSqlite3.Statement;
      for (const { id } of statement.all(...chunk.flatMap(numberedScanValues)) as { id: string }[]) inserted.add(id);
    }
    if (inserted.size < scans.length) {
      // Each new position is at most the one given, so in this order no update meets a
      // position still held by another row (the unique index checks each row as it is updated).
      scans
        .filter((scan) => inserted.has(scan.id))
        .forEach((scan, index) => {
          scan.streamSeq = base + index + 1;
          this.renumber.run(scan.streamSeq, scan.id);
        });
    }
    this.setStream.run(base + inserted.size);
    return inserted;
  }

  /** The scans are numbered already (insertScans). */
  finish(counters: CounterDelta[], scans: Scan[]): Finished {
    const before: RefCount[] = [];
    const codes: (CodeRow | undefined)[] = [];
    for (const { pageId, ref, scans: count, last } of counters) {
      const claimed = refCountOf(this.claim.get(pageId, refKey(ref)) as CounterRow);
      before.push(claimed);
      const values = [claimed.scanCount + count, Math.max(claimed.lastScannedAt, last), pageId, refKey(ref)];
      this.setRefCounter.run(...values);
      codes.push(this.setCodeCount.get(...values) as CodeRow | undefined);
    }
    return { before, codes, base: scans[0].streamSeq - 1 };
  }
}

/** Names of the statements prepared on PostgreSQL connections, by their text. */
const preparedNames = new Map<string, string>();
/** Texts prepared at most (each connection keeps its own): statements of other shapes are planned at each call. */
const MAX_PREPARED = 500;

/**
 * TransactionSql on the pg connection of the transaction itself: an ingest step's statements
 * run while its rows are locked, so each costs only the driver's work (no ORM layer), and
 * each text is prepared once per connection (planned once, not at every call).
 */
class PgSql implements TransactionSql {
  readonly kind = 'postgres';
  /** BEGIN sent (alone, before a statement that needs an answer, or with the COMMIT's round trip) */
  begun = false;
  /** statements sent with the COMMIT (see withCommit), in the order given */
  private deferred: { sql: string; onCommitted?: (rows: unknown[]) => void }[] = [];

  constructor(private readonly connection: PgConnection) {}

  withCommit<Row>(sql: string, onCommitted?: (rows: Row[]) => void): void {
    this.deferred.push({ sql, ...(onCommitted ? { onCommitted: onCommitted as (rows: unknown[]) => void } : {}) });
  }

  takeDeferred(): { sql: string; onCommitted?: (rows: unknown[]) => void }[] {
    const taken = this.deferred;
    this.deferred = [];
    return taken;
  }

  param(n: number): string {
    return `$${n}`;
  }

  async query<Row>(sql: string, parameters: unknown[]): Promise<Row[]> {
    let name = preparedNames.get(sql);
    if (name === undefined && preparedNames.size < MAX_PREPARED) {
      name = `ingest_${preparedNames.size}`;
      preparedNames.set(sql, name);
    }
    if (!this.begun) {
      this.begun = true;
      await this.connection.query('BEGIN');
    }
    const result = await this.connection.query({ ...(name === undefined ? {} : { name }), text: sql, values: parameters });
    return lastRows<Row>(result);
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

function isSqliteBusy(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_BUSY';
}

/**
 * BEGIN IMMEDIATE, waiting for a lock held by another process without blocking the event
 * loop: better-sqlite3 waits out its busy_timeout synchronously, which would stop every
 * request of this process (health checks included) for as long. So the attempt itself
 * does not wait (busy_timeout 0), and the wait between attempts, up to the connection's
 * busy_timeout (DATABASE_BUSY_TIMEOUT_MS), is a timer; past it the commit fails (the webhook
 * then answers 500, and Meta retries).
 */
async function beginImmediate(handle: BetterSqlite3.Database): Promise<void> {
  const busyTimeout = handle.pragma('busy_timeout', { simple: true }) as number;
  const deadline = Date.now() + busyTimeout;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
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

/**
 * PostgreSQL: how many times a transaction is made when scans it counted as new turn out to be
 * stored (each time by another transaction that committed meanwhile: a redelivery racing).
 */
const MAX_INGEST_ATTEMPTS = 4;

/** PostgreSQL: which scans of a group are stored (committed) already. */
async function storedScanIds(connection: PgConnection, group: WriteRequest[]): Promise<Set<string>> {
  const ids = [...new Set(group.flatMap(({ scans }) => scans.map((scan) => scan.id)))];
  // page-scope exempt: ingest checks which of the signed events' scans are stored; answers no request.
  const result = await connection.query({ text: 'SELECT id FROM scan WHERE id = ANY($1::varchar[])', values: [ids] });
  return new Set(lastRows<{ id: string }>(result).map(({ id }) => id));
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

  /**
   * Marks a transaction's new positions as unpublished (see unpublishedFrom): on SQLite before
   * its COMMIT; on PostgreSQL, which numbers them in the COMMIT's round trip, as soon as it answers.
   */
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

  /**
   * The transaction on a pooled connection, begun and ended here rather than by TypeORM: its
   * last statement carries the COMMIT (see PostgresStatements.finish).
   */
  private async commitOnPostgres(group: WriteRequest[], marked: number[]): Promise<ScanEvent[][]> {
    const runner = this.db.dataSource.createQueryRunner();
    let unfinished: PgConnection | undefined;
    try {
      // TypeORM's QueryRunner.connect answers the driver's connection untyped: here pg's PoolClient.
      const connection = (await runner.connect()) as PgConnection;
      let storedAlready = new Set<string>();
      for (let attempt = 1; ; attempt += 1) {
        const sql = new PgSql(connection);
        const statements = new PostgresStatements(connection, sql, storedAlready);
        try {
          const events = await storeScans(statements, sql, this.steps, group);
          if (!statements.committed) await statements.commit();
          // Numbered by the COMMIT's own round trip (scan_ingest): marked as soon as known.
          this.markUnpublished(events, marked);
          return events;
        } catch (error) {
          // Harmless when the transaction is already gone (a failed COMMIT): PostgreSQL only warns.
          // A ROLLBACK that fails too (timed out) leaves the transaction open: the connection is
          // closed, never reused with the scans it may still insert (see Database.transaction).
          if (!statements.committed && sql.begun) {
            await runner.query('ROLLBACK').catch(() => {
              unfinished = connection;
            });
          }
          if (!isStoredAlready(error) || unfinished || attempt >= MAX_INGEST_ATTEMPTS) throw error;
        }
        // A redelivery committed by another transaction since: made again without what is stored now.
        storedAlready = await storedScanIds(connection, group);
      }
    } finally {
      if (unfinished) discardConnection(unfinished);
      await runner.release();
    }
  }

  private commit(group: WriteRequest[], marked: number[]): Promise<ScanEvent[][]> {
    if (!this.sqliteStatements) return this.commitOnPostgres(group, marked);
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
