import type { DataSource, EntityManager } from 'typeorm';
import type { DatabaseConfig } from '../config';
import { createDataSource } from './data-source';

export type DatabaseKind = DatabaseConfig['kind'];

/**
 * The gateway's handle on its database: the TypeORM DataSource plus what differs
 * between SQLite and PostgreSQL (placeholders, how write transactions are serialized).
 */
export class Database {
  readonly kind: DatabaseKind;
  private sqliteWriteQueue: Promise<unknown> = Promise.resolve();

  private constructor(readonly dataSource: DataSource) {
    this.kind = dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  /** Connects and runs pending migrations (never `synchronize`). */
  static async open(config: DatabaseConfig): Promise<Database> {
    const dataSource = createDataSource(config);
    await dataSource.initialize();
    try {
      await dataSource.runMigrations({ transaction: 'each' });
    } catch (error) {
      await dataSource.destroy();
      throw error;
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
    if (this.kind === 'postgres') return this.dataSource.transaction(work);
    const run = this.sqliteWriteQueue.then(() => this.dataSource.transaction(work));
    this.sqliteWriteQueue = run.catch(() => undefined);
    return run;
  }

  async ping(): Promise<void> {
    await this.dataSource.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.sqliteWriteQueue;
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
