import { open } from 'node:fs/promises';
import type BetterSqlite3 from 'better-sqlite3';

/** SQLite's `PRAGMA synchronous` levels (https://sqlite.org/pragma.html#pragma_synchronous). */
const SYNCHRONOUS_NORMAL = 1;
const SYNCHRONOUS_FULL = 2;

function isMissingFile(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ENOENT';
}

async function syncFileData(path: string): Promise<void> {
  const file = await open(path, 'r');
  try {
    await file.datasync();
  } finally {
    await file.close();
  }
}

/**
 * Durable commits on a SQLite file without stopping the event loop.
 *
 * With `synchronous = FULL` every COMMIT fsyncs the WAL inside better-sqlite3, on the main
 * thread: 1 ms typically, 8 ms and more when the disk is busy, during which no request of
 * the process moves (no socket accepted, no subscriber served). A commit run through
 * `commit()` is made with `synchronous = NORMAL` instead (SQLite writes the WAL frames
 * but does not fsync them), and `flush()` then fsyncs the WAL file on libuv's thread
 * pool; whoever acknowledges the commit waits for `flush()`, so what is acknowledged is
 * on disk exactly as with FULL. A flush covers every commit made before it starts, so
 * commits made while one runs share the next one (at most one fsync in flight, one
 * queued), and the next transaction can be written while the previous one is flushed.
 *
 * Other connections and other commits of this one keep `synchronous = FULL`. Between the
 * commit and the end of its flush the rows are visible to readers of this database but
 * would not survive a power loss (a process crash loses nothing: the frames are in the
 * operating system's cache); nothing is acknowledged in that window.
 */
export class SqliteDurability {
  private current?: Promise<void>;
  private next?: Promise<void>;

  private constructor(
    private readonly handle: BetterSqlite3.Database,
    /** the connection's own level, restored after each commit */
    private readonly synchronous: number,
    private readonly walPath: string,
    private readonly databasePath: string,
  ) {}

  /**
   * For a file database in WAL mode whose commits fsync (FULL or EXTRA); undefined
   * otherwise (in memory, another journal mode, or a connection configured not to sync,
   * whose choice is kept).
   */
  static of(handle: BetterSqlite3.Database): SqliteDurability | undefined {
    if (handle.memory) return undefined;
    const journalMode = String(handle.pragma('journal_mode', { simple: true })).toLowerCase();
    const synchronous = Number(handle.pragma('synchronous', { simple: true }));
    if (journalMode !== 'wal' || synchronous < SYNCHRONOUS_FULL) return undefined;
    return new SqliteDurability(handle, synchronous, `${handle.name}-wal`, handle.name);
  }

  /**
   * Runs `work` (a transaction, committed by it) with SQLite's own fsync off; call
   * `flush()` before acknowledging anything it committed. Outside a transaction only:
   * the setting is per connection, restored when `work` ends.
   */
  async commit<T>(work: () => Promise<T>): Promise<T> {
    this.handle.pragma(`synchronous = ${SYNCHRONOUS_NORMAL}`);
    try {
      return await work();
    } finally {
      this.handle.pragma(`synchronous = ${this.synchronous}`);
    }
  }

  /** Resolves once everything committed before the call is on disk. */
  flush(): Promise<void> {
    if (this.next) return this.next;
    if (!this.current) return this.start();
    // The flush under way may have begun before the caller's commit: wait for the next one.
    const next = this.current
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start();
      });
    this.next = next;
    return next;
  }

  private start(): Promise<void> {
    const run = this.sync();
    this.current = run;
    void run
      .catch(() => undefined)
      .then(() => {
        if (this.current === run) this.current = undefined;
      });
    return run;
  }

  private async sync(): Promise<void> {
    try {
      await syncFileData(this.walPath);
    } catch (error) {
      if (!isMissingFile(error)) throw error;
      // No WAL file: a checkpoint moved every frame into the database file (and synced it);
      // syncing that file again is cheap and makes no assumption.
      await syncFileData(this.databasePath);
    }
  }
}
