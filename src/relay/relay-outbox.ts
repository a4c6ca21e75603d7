import { randomUUID } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { Database } from '../db/database';
import type { TransactionSql } from '../scans/scan.store';
import type { RelayDelivery } from './relay-body';

/** A delivery claimed by this process, with what it needs to send it. */
export interface ClaimedDelivery extends RelayDelivery {
  id: string;
  /** attempts made before this one */
  attempts: number;
  createdAt: number;
  /** the claim's token: only its holder may settle the row */
  lease: string;
}

interface DeliveryRow {
  id: string;
  url: string;
  body: Buffer | Uint8Array;
  content_type: string;
  signature_256: string;
  signature_1: string | null;
  attempts: number | string;
  created_at: number | string;
}

export interface TargetCounts {
  url: string;
  pending: number;
  delivered: number;
  givenUp: number;
  oldestPendingAt: number | null;
  lastError: string | null;
}

interface Statement {
  sql: string;
  values: unknown[];
}

interface Settlement {
  row: Statement;
  target: Statement | undefined;
  resolve: (updated: boolean) => void;
  reject: (error: unknown) => void;
}

const COLUMNS = 'id, url, body, content_type, signature_256, signature_1, state, attempts, created_at, next_attempt_at';
const VALUE_COUNT = 10;
const MAX_ERROR_LENGTH = 500;
/** Due rows looked at per free slot, so that a backlog of one bot still leaves room to find the others'. */
const CANDIDATES_PER_SLOT = 8;

/**
 * The relay's table, on either database. Rows are inserted inside the webhook's ingest
 * transaction (insert); everything else runs in short transactions of its own, which on
 * SQLite are queued behind the scan writer's (Database.transaction) so they never join it.
 */
export class RelayOutbox {
  private readonly settlements: Settlement[] = [];
  private flushing = false;

  constructor(private readonly db: Database) {}

  /**
   * The n-th parameter of the statements below, which use some twice: numbered on
   * PostgreSQL, named on SQLite (where `?` would bind by position in the text).
   */
  private p(n: number): string {
    return this.db.kind === 'postgres' ? `$${n}` : `@p${n}`;
  }

  /** Inside the ingest transaction: the request's deliveries, due now. */
  async insert(sql: TransactionSql, deliveries: { id: string; delivery: RelayDelivery }[], now: number): Promise<void> {
    if (deliveries.length === 0) return;
    const rows = deliveries.map(
      (_, row) => `(${Array.from({ length: VALUE_COUNT }, (__, column) => sql.param(row * VALUE_COUNT + column + 1)).join(', ')})`,
    );
    const values = deliveries.flatMap(({ id, delivery }) => [
      id,
      delivery.url,
      delivery.body,
      delivery.contentType,
      delivery.signature256,
      delivery.signature1 ?? null,
      'pending',
      0,
      now,
      now,
    ]);
    await sql.query(`INSERT INTO relay_delivery (${COLUMNS}) VALUES ${rows.join(', ')}`, values);
  }

  /**
   * Claims up to `limit` due deliveries for `leaseMs`, at most `perUrl` of one bot and none of
   * the bots in `busyUrls` (this process already has as many in flight as it allows them), so
   * that one bot's backlog cannot take every slot. Claimed rows stay pending, due again once
   * the lease is over: a process that dies mid-delivery loses nothing. On PostgreSQL, rows
   * another instance is claiming at that moment are skipped rather than waited for.
   */
  async claim(request: { limit: number; perUrl: number; busyUrls: string[]; now: number; leaseMs: number }): Promise<ClaimedDelivery[]> {
    const { limit, perUrl, busyUrls, now, leaseMs } = request;
    const lease = randomUUID();
    const p = (n: number) => this.p(n);
    const lock = this.db.kind === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '';
    const busy = busyUrls.length === 0 ? '' : `AND url NOT IN (${busyUrls.map((_, index) => p(index + 7)).join(', ')})`;
    // The candidates are locked in the innermost query: PostgreSQL allows no window function beside FOR UPDATE.
    const rows = await this.write<DeliveryRow>(
      `UPDATE relay_delivery SET next_attempt_at = ${p(1)}, lease = ${p(2)}
       WHERE id IN (
         SELECT id FROM (
           SELECT id, next_attempt_at, ROW_NUMBER() OVER (PARTITION BY url ORDER BY next_attempt_at, id) AS nth
           FROM (
             SELECT id, url, next_attempt_at FROM relay_delivery
             WHERE state = 'pending' AND next_attempt_at <= ${p(3)} ${busy}
             ORDER BY next_attempt_at LIMIT ${p(5)} ${lock}
           ) due
         ) ranked
         WHERE nth <= ${p(6)}
         ORDER BY next_attempt_at LIMIT ${p(4)}
       )
       RETURNING id, url, body, content_type, signature_256, signature_1, attempts, created_at`,
      [now + leaseMs, lease, now, limit, limit * CANDIDATES_PER_SLOT, perUrl, ...busyUrls],
    );
    return rows
      .map((row) => ({
        id: row.id,
        url: row.url,
        body: Buffer.isBuffer(row.body) ? row.body : Buffer.from(row.body),
        contentType: row.content_type,
        signature256: row.signature_256,
        signature1: row.signature_1 ?? undefined,
        attempts: Number(row.attempts),
        createdAt: Number(row.created_at),
        lease,
      }))
      .sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The bot accepted it. false when the lease was lost meanwhile (another process has it now). */
  async delivered(delivery: ClaimedDelivery, now: number): Promise<boolean> {
    return this.settle(
      delivery,
      `state = 'delivered', attempts = attempts + 1, finished_at = ${this.p(3)}, lease = NULL, last_error = NULL`,
      [now],
      (p) => ({
        sql: `INSERT INTO relay_target (url, delivered, given_up, last_error, last_error_at) VALUES (${p(1)}, 1, 0, NULL, NULL)
              ON CONFLICT (url) DO UPDATE SET delivered = relay_target.delivered + 1, last_error = NULL, last_error_at = NULL`,
        values: [delivery.url],
      }),
    );
  }

  /** The attempt failed: due again at `retryAt`. */
  async failed(delivery: ClaimedDelivery, error: string, now: number, retryAt: number): Promise<boolean> {
    const message = error.slice(0, MAX_ERROR_LENGTH);
    return this.settle(
      delivery,
      `attempts = attempts + 1, next_attempt_at = ${this.p(3)}, lease = NULL, last_error = ${this.p(4)}`,
      [retryAt, message],
      (p) => ({
        sql: `INSERT INTO relay_target (url, delivered, given_up, last_error, last_error_at) VALUES (${p(1)}, 0, 0, ${p(2)}, ${p(3)})
              ON CONFLICT (url) DO UPDATE SET last_error = ${p(2)}, last_error_at = ${p(3)}`,
        values: [delivery.url, message, now],
      }),
    );
  }

  /** The last attempt failed and the delivery is too old to retry: kept, no longer due. */
  async gaveUp(delivery: ClaimedDelivery, error: string, now: number): Promise<boolean> {
    const message = error.slice(0, MAX_ERROR_LENGTH);
    return this.settle(
      delivery,
      `state = 'given_up', attempts = attempts + 1, finished_at = ${this.p(3)}, lease = NULL, last_error = ${this.p(4)}`,
      [now, message],
      (p) => ({
        sql: `INSERT INTO relay_target (url, delivered, given_up, last_error, last_error_at) VALUES (${p(1)}, 0, 1, ${p(2)}, ${p(3)})
              ON CONFLICT (url) DO UPDATE SET given_up = relay_target.given_up + 1, last_error = ${p(2)}, last_error_at = ${p(3)}`,
        values: [delivery.url, message, now],
      }),
    );
  }

  /** Hands a claimed delivery back untried (the process is stopping): due at once, no attempt counted. */
  async release(delivery: ClaimedDelivery, now: number): Promise<void> {
    await this.settle(delivery, `next_attempt_at = ${this.p(3)}, lease = NULL`, [now]);
  }

  /** Deletes the rows delivered before `deliveredBefore` and those given up before `givenUpBefore` (their counts stay in relay_target). */
  async prune(before: { deliveredBefore: number; givenUpBefore: number }): Promise<void> {
    await this.write(
      `DELETE FROM relay_delivery
        WHERE (state = 'delivered' AND finished_at < ${this.p(1)}) OR (state = 'given_up' AND finished_at < ${this.p(2)})`,
      [before.deliveredBefore, before.givenUpBefore],
    );
  }

  async pendingCount(): Promise<number> {
    const [row] = await this.db.read<{ n: number | string }>(`SELECT COUNT(*) AS n FROM relay_delivery WHERE state = 'pending'`);
    return Number(row?.n ?? 0);
  }

  /** Per bot URL: pending rows and the counts kept in relay_target. */
  async targets(): Promise<TargetCounts[]> {
    const pending = await this.db.read<{ url: string; pending: number | string; oldest: number | string }>(
      `SELECT url, COUNT(*) AS pending, MIN(created_at) AS oldest FROM relay_delivery WHERE state = 'pending' GROUP BY url`,
    );
    const kept = await this.db.read<{ url: string; delivered: number | string; given_up: number | string; last_error: string | null }>(
      'SELECT url, delivered, given_up, last_error FROM relay_target',
    );
    const byUrl = new Map<string, TargetCounts>();
    const of = (url: string) => {
      let target = byUrl.get(url);
      if (!target) {
        target = { url, pending: 0, delivered: 0, givenUp: 0, oldestPendingAt: null, lastError: null };
        byUrl.set(url, target);
      }
      return target;
    };
    for (const row of kept)
      Object.assign(of(row.url), { delivered: Number(row.delivered), givenUp: Number(row.given_up), lastError: row.last_error });
    for (const row of pending) Object.assign(of(row.url), { pending: Number(row.pending), oldestPendingAt: Number(row.oldest) });
    return [...byUrl.values()];
  }

  /**
   * Updates the row if this process still holds its lease (`set` uses placeholders 3 and
   * on), and in the same transaction the bot's counters. Resolves with whether the row was
   * still this process's.
   */
  private settle(
    delivery: ClaimedDelivery,
    set: string,
    setValues: unknown[],
    target?: (p: (n: number) => string) => Statement,
  ): Promise<boolean> {
    const p = (n: number) => this.p(n);
    const row = {
      sql: `UPDATE relay_delivery SET ${set} WHERE id = ${p(1)} AND lease = ${p(2)} RETURNING id`,
      values: [delivery.id, delivery.lease, ...setValues],
    };
    return new Promise((resolve, reject) => {
      this.settlements.push({ row, target: target?.(p), resolve, reject });
      this.flushSettlements();
    });
  }

  /**
   * Every settlement waiting is written in one transaction, one transaction at a time: one
   * commit (an fsync on SQLite) for a whole round of deliveries rather than one each, so the
   * relay stays out of the way of the scans' commits.
   */
  private flushSettlements(): void {
    if (this.flushing || this.settlements.length === 0) return;
    this.flushing = true;
    setImmediate(() => {
      const batch = this.settlements.splice(0);
      this.transaction(async (run) => {
        const updated: boolean[] = [];
        for (const { row, target } of batch) {
          const rows = await run(row.sql, row.values);
          // The counters change only if the row did: a lost lease means another process settles it.
          if (rows.length > 0 && target) await run(target.sql, target.values);
          updated.push(rows.length > 0);
        }
        return updated;
      })
        .then(
          (updated) => batch.forEach((item, index) => item.resolve(updated[index])),
          (error: unknown) => batch.forEach((item) => item.reject(error)),
        )
        .finally(() => {
          this.flushing = false;
          this.flushSettlements();
        });
    });
  }

  private write<Row>(sql: string, values: unknown[]): Promise<Row[]> {
    return this.transaction((run) => run<Row>(sql, values));
  }

  /**
   * Runs `work` in a transaction of its own. On SQLite it is queued behind the other writes of
   * the connection (Database.exclusive), so it never joins the scan writer's transaction.
   */
  private transaction<T>(work: (run: <Row>(sql: string, values: unknown[]) => Promise<Row[]>) => Promise<T>): Promise<T> {
    const handle = this.db.sqliteHandle();
    if (handle) {
      return this.db.exclusive(async () => {
        handle.exec('BEGIN IMMEDIATE');
        try {
          const result = await work(async <Row>(sql: string, values: unknown[]) => this.runSqlite<Row>(handle, sql, values));
          handle.exec('COMMIT');
          return result;
        } catch (error) {
          if (handle.inTransaction) handle.exec('ROLLBACK');
          throw error;
        }
      });
    }
    return this.db.transaction(async (manager) => {
      const runner = manager.queryRunner;
      if (!runner) throw new Error('a transaction has a query runner');
      return work(async <Row>(sql: string, values: unknown[]) => {
        const result = await runner.query(sql, values, true);
        return (result.records ?? []) as Row[];
      });
    });
  }

  private readonly prepared = new Map<string, BetterSqlite3.Statement>();

  private runSqlite<Row>(handle: BetterSqlite3.Database, sql: string, values: unknown[]): Row[] {
    let statement = this.prepared.get(sql);
    if (!statement) {
      statement = handle.prepare(sql);
      this.prepared.set(sql, statement);
    }
    // Named parameters (see p()): @p1 is values[0].
    const named = Object.fromEntries(values.map((value, index) => [`p${index + 1}`, value]));
    if (statement.reader) return statement.all(named) as Row[];
    statement.run(named);
    return [];
  }
}
