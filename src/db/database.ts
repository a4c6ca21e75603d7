import type BetterSqlite3 from 'better-sqlite3';
import type { DataSource, EntityManager } from 'typeorm';

export type DatabaseKind = 'sqlite' | 'postgres';

/** What of pg's PoolClient is used to close a connection that cannot be trusted any more. */
export interface PostgresConnection {
  end(): Promise<void>;
}

/**
 * Closes a pooled PostgreSQL connection left in an unknown state (a transaction neither
 * committed nor rolled back): pg drops its socket at once when a statement is still pending,
 * and the pool does not hand an ended client out again when it is released.
 */
export function discardConnection(connection: PostgresConnection): void {
  connection.end().catch(() => undefined);
}

/**
 * The gateway's handle on its database: the TypeORM DataSource plus what differs
 * between SQLite and PostgreSQL (placeholders, how write transactions are serialized).
 */
export class Database {
  readonly kind: DatabaseKind;
  private sqliteWriteQueue: Promise<unknown> = Promise.resolve();
  /** Prepared once, run many times: TypeORM prepares every statement anew. */
  private readonly sqliteStatements = new Map<string, BetterSqlite3.Statement>();

  private constructor(readonly dataSource: DataSource) {
    this.kind = dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  /**
   * Runs pending migrations (never `synchronize`), on `migrations` when given (then closed),
   * else on `dataSource`, and connects `dataSource` (see app/data-source.ts).
   */
  static async open(dataSource: DataSource, migrations?: DataSource): Promise<Database> {
    const migrating = migrations ?? dataSource;
    await migrating.initialize();
    try {
      await migrating.runMigrations({ transaction: 'each' });
    } catch (error) {
      await migrating.destroy();
      throw error;
    }
    if (migrations) {
      await migrations.destroy();
      await dataSource.initialize();
    }
    return new Database(dataSource);
  }

  get manager(): EntityManager {
    return this.dataSource.manager;
  }

  /** The n-th (1-based) bind placeholder of a raw statement. */
  param(n: number): string {
    return this.kind === 'postgres' ? `$${n}` : '?';
  }

  /**
   * Runs `work` in one transaction. SQLite has a single connection whose
   * transactions must not interleave, so there they are queued; PostgreSQL runs
   * them concurrently on pooled connections.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.kind === 'postgres') return this.postgresTransaction(work);
    return this.exclusive(() => this.dataSource.transaction(work));
  }

  /**
   * TypeORM's transaction, except for a connection whose transaction could not be rolled back
   * (its statement timed out, DATABASE_QUERY_TIMEOUT_MS, and the ROLLBACK too): that one is
   * closed instead of going back to the pool, where the next transaction would inherit what
   * it left open. Closing it makes PostgreSQL abort the transaction.
   */
  private async postgresTransaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const runner = this.dataSource.createQueryRunner();
    let connection: PostgresConnection | undefined;
    let unfinished = false;
    try {
      // TypeORM answers the driver's connection untyped: pg's PoolClient here.
      connection = (await runner.connect()) as PostgresConnection;
      await runner.startTransaction();
      const result = await work(runner.manager);
      await runner.commitTransaction();
      return result;
    } catch (error) {
      if (runner.isTransactionActive) {
        await runner.rollbackTransaction().catch(() => {
          unfinished = true;
        });
      }
      throw error;
    } finally {
      if (unfinished && connection) discardConnection(connection);
      await runner.release();
    }
  }

  /**
   * SQLite only: runs `work` alone on the connection, after every write queued
   * before it. Writes that bypass TypeORM (prepared statements on the driver) go
   * through here so they never interleave with a TypeORM transaction.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.sqliteWriteQueue.then(work);
    this.sqliteWriteQueue = run.catch(() => undefined);
    return run;
  }

  /** The better-sqlite3 connection under TypeORM, for prepared statements on hot paths; undefined on PostgreSQL. */
  sqliteHandle(): BetterSqlite3.Database | undefined {
    if (this.kind !== 'sqlite') return undefined;
    return (this.dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
  }

  /**
   * A read on a hot path, with numbered placeholders (param(n)). On SQLite through
   * a cached prepared statement on the driver; on PostgreSQL through the pool.
   */
  async read<Row>(sql: string, parameters: unknown[] = []): Promise<Row[]> {
    const handle = this.sqliteHandle();
    if (!handle) return this.dataSource.query(sql, parameters);
    let statement = this.sqliteStatements.get(sql);
    if (!statement) {
      statement = handle.prepare(sql);
      this.sqliteStatements.set(sql, statement);
    }
    return statement.all(...parameters) as Row[];
  }

  /**
   * Parameters of a hand-built statement: `bind(value)` appends a value and answers its
   * placeholder, so conditions can be added in any order and the values follow them.
   */
  parameters(): { values: unknown[]; bind: (value: unknown) => string } {
    const values: unknown[] = [];
    return {
      values,
      bind: (value) => {
        values.push(value);
        return this.param(values.length);
      },
    };
  }

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.sqliteWriteQueue;
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
