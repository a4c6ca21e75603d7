/**
 * The floor of the batched-ingest row: the very rows the gateway stored, read back from
 * its file, inserted with better-sqlite3 directly (one prepared INSERT, each round's rows
 * in one transaction) into a fresh file with the gateway's schema (made by the real
 * migrations) and its durability settings (WAL, synchronous=FULL). No HTTP, no parsing,
 * no signature, no counters: what the disk and SQLite allow for those rows.
 */
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { createSchema } from './seed';

export interface StoredScans {
  columns: string[];
  /** in the table's order: by id, which the gateway makes time-ordered (or by rowid, insertion order) */
  rows: unknown[][];
}

/** Every scan row of a stopped gateway's SQLite file, whatever the columns are. */
export function readStoredScans(path: string): StoredScans {
  const db = new BetterSqlite3(path);
  try {
    const select = db.prepare('SELECT * FROM scan').raw(true);
    return { columns: select.columns().map((column) => column.name), rows: select.all() as unknown[][] };
  } finally {
    db.close();
  }
}

export interface InsertFloorResult {
  rows: number;
  ms: number;
  perSecond: number;
}

/** Each round inserts its rows in one transaction; the file is created once, so rounds accumulate like the gateway's. */
export async function measureRawInserts(path: string, columns: string[], rounds: unknown[][][]): Promise<InsertFloorResult[]> {
  await createSchema(path);
  const db = new BetterSqlite3(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const insert = db.prepare(`INSERT INTO scan (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`);
    const insertAll = db.transaction((rows: unknown[][]) => {
      for (const row of rows) insert.run(row);
    });
    return rounds.map((rows) => {
      const started = performance.now();
      insertAll(rows);
      const ms = performance.now() - started;
      return { rows: rows.length, ms, perSecond: (rows.length / ms) * 1000 };
    });
  } finally {
    db.close();
  }
}
