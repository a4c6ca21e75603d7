/**
 * Large data for the listing row, written with raw SQL straight into a stopped gateway's
 * SQLite file: rows are generated inside SQLite (recursive CTEs) in big transactions, and
 * every key is sequential so that each B-tree (table and indexes) is appended to rather
 * than split at random places.
 *
 * Layout that keeps every index of `scan` append-only: code k has ref `bench-<k, 6 digits>`
 * (lexicographic order = k order), its scans are generated code after code, and scan n
 * occurred at a base instant + n ms and has an id that sorts by n. So (page_id, ref,
 * occurred_at, id), (page_id, occurred_at, id), (occurred_at, id) and id all grow
 * monotonically.
 *
 * The columns written are those the migrations created: each table's columns are read
 * from the file and matched with the values known here, so a column added with a default
 * (or removed) needs no change here; an unknown column that needs a value stops seeding
 * with a clear message.
 */
import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import BetterSqlite3 from 'better-sqlite3';
import { Database } from '../src/db/database';
import { createDataSource } from '../src/app/data-source';

/** Creates the gateway's schema in a new SQLite file by running the real migrations. */
export async function createSchema(path: string): Promise<void> {
  const database = await Database.open(createDataSource({ kind: 'sqlite', path }));
  await database.close();
}

export function benchRef(k: number): string {
  return `bench-${String(k).padStart(6, '0')}`;
}

/** The SQL twin of benchRef. */
const REF_SQL = (n: string) => `printf('bench-%06d', ${n})`;
const CODE_ID_SQL = (n: string) => `printf('c0000000-0000-4000-8000-%012x', ${n})`;
const IMAGE_ID_SQL = (n: string) => `printf('10000000-0000-4000-8000-%012x', ${n})`;

/** A few bytes standing in for a PNG: listing never reads them. */
const PLACEHOLDER_IMAGE = Buffer.from('89504e470d0a1a0a', 'hex');

/** Epoch ms of the first seeded scan; scan n occurred at SCAN_EPOCH + n. */
export const SCAN_EPOCH = Date.UTC(2025, 0, 1);

function openForSeeding(path: string): BetterSqlite3.Database {
  const db = new BetterSqlite3(path);
  // A throwaway file: no journal, no fsync while loading. WAL is restored at the end.
  db.pragma('journal_mode = OFF');
  db.pragma('synchronous = OFF');
  db.pragma('locking_mode = EXCLUSIVE');
  db.pragma('cache_size = -262144');
  db.pragma('temp_store = MEMORY');
  return db;
}

/**
 * Restores WAL and flushes the file to disk: seeding ran without fsync, and gigabytes of
 * dirty pages written back by the kernel during the next measurement would slow it down.
 */
function closeAfterSeeding(db: BetterSqlite3.Database, path: string): void {
  db.pragma('locking_mode = NORMAL');
  db.pragma('journal_mode = WAL');
  db.close();
  const file = openSync(path, 'r+');
  try {
    fsyncSync(file);
  } finally {
    closeSync(file);
  }
}

/**
 * `INSERT INTO table (columns) SELECT expressions FROM source` over the columns the table
 * has. `values` maps column names to SQL expressions; `prefix` goes before INSERT (a WITH clause).
 */
function insertSelect(
  db: BetterSqlite3.Database,
  table: string,
  values: Record<string, string>,
  from: string,
  prefix = '',
): BetterSqlite3.Statement {
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; notnull: number; dflt_value: unknown; pk: number }[];
  if (columns.length === 0) throw new Error(`seeding: the database has no table ${table}`);
  const missing = columns.filter(
    (column) => !(column.name in values) && (column.notnull === 1 || column.pk > 0) && column.dflt_value === null,
  );
  if (missing.length > 0) {
    throw new Error(
      `seeding: ${table}.${missing.map((column) => column.name).join(', ')} need a value the seed does not know (bench/seed.ts)`,
    );
  }
  const known = columns.filter((column) => column.name in values).map((column) => column.name);
  return db.prepare(
    `${prefix} INSERT INTO ${table} (${known.join(', ')}) SELECT ${known.map((name) => values[name]).join(', ')} FROM ${from}`,
  );
}

export interface SeedCodesOptions {
  pageId: string;
  count: number;
}

/**
 * `count` codes with refs benchRef(0..count-1), each with one code_image row (image_id
 * points at it) and a zero ref_counter row, as generateCode would leave them.
 */
export function seedCodes(path: string, options: SeedCodesOptions): { codes: number; ms: number } {
  const started = performance.now();
  const db = openForSeeding(path);
  const now = Date.now();
  const sha256 = createHash('sha256').update(PLACEHOLDER_IMAGE).digest('hex');
  const series = `WITH RECURSIVE k(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM k WHERE n + 1 < @count)`;
  const insertCodes = insertSelect(
    db,
    'code',
    {
      id: CODE_ID_SQL('n'),
      page_id: '@pageId',
      ref: REF_SQL('n'),
      type: `'STANDARD'`,
      label: `'Bench ' || n`,
      provider: `'LOCAL'`,
      image_size: '1000',
      image_id: IMAGE_ID_SQL('n'),
      created_at: '@createdBase + n',
      scan_count: '0',
      last_scanned_at: '0',
    },
    'k',
    series,
  );
  const insertImages = insertSelect(
    db,
    'code_image',
    {
      id: IMAGE_ID_SQL('n'),
      code_id: CODE_ID_SQL('n'),
      size: '1000',
      content_type: `'image/png'`,
      provider: `'LOCAL'`,
      sha256: '@sha256',
      byte_length: '@byteLength',
      bytes: '@bytes',
      created_at: '@createdBase + n',
    },
    'k',
    series,
  );
  const insertCounters = insertSelect(
    db,
    'ref_counter',
    { page_id: '@pageId', ref: REF_SQL('n'), scan_count: '0', last_scanned_at: '0' },
    'k',
    series,
  );
  const parameters = {
    count: options.count,
    pageId: options.pageId,
    createdBase: now - options.count,
    sha256,
    byteLength: PLACEHOLDER_IMAGE.length,
    bytes: PLACEHOLDER_IMAGE,
  };
  db.transaction(() => {
    insertCodes.run(parameters);
    insertImages.run(parameters);
    insertCounters.run(parameters);
  })();
  closeAfterSeeding(db, path);
  return { codes: options.count, ms: performance.now() - started };
}

/**
 * Scans of code k: 100 ± v, pairs of codes summing to 200, so the total is exactly
 * 100 per code (for an even number of codes) while counts vary from 1 to 199.
 */
export function scansOfCode(k: number, average: number): number {
  const spread = ((k >> 1) * 37) % average; // 0 .. average-1
  return k % 2 === 0 ? average + spread : average - spread;
}

export interface SeedScansOptions {
  pageId: string;
  /** codes seeded by seedCodes, whose refs receive the scans */
  codes: number;
  averagePerCode: number;
  /** called now and then with the scans written so far */
  progress?: (written: number) => void;
}

/**
 * Scans for every seeded code, with ref_counter and code.scan_count/last_scanned_at set
 * to what the gateway would have counted for them.
 */
export function seedScans(path: string, options: SeedScansOptions): { scans: number; ms: number } {
  const started = performance.now();
  const db = openForSeeding(path);
  const insertScans = insertSelect(
    db,
    'scan',
    {
      // time first like the gateway's ids, and sequential: the table (clustered by id or not) only appends
      id: `printf('%08x-%04x-8000-0000-%012x', (@epoch + @offset + i) >> 16, (@epoch + @offset + i) & 65535, @offset + i)`,
      page_id: '@pageId',
      ref: '@ref',
      kind: `CASE WHEN i % 10 = 0 THEN 'POSTBACK' ELSE 'REFERRAL' END`,
      source: `'SHORTLINK'`,
      // people come back: about a million of them
      sender_hash: `printf('%064x', ((@offset + i) * 7919) % 1000003)`,
      occurred_at: '@epoch + @offset + i',
      received_at: '@epoch + @offset + i + 40',
      // the event key of earlier schemas, sequential too
      event_key: `printf('%064x', @offset + i)`,
    },
    's',
    'WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < @count)',
  );
  const updateCode = db.prepare(`UPDATE code SET scan_count = @count, last_scanned_at = @last WHERE page_id = @pageId AND ref = @ref`);
  const updateCounter = db.prepare(
    `UPDATE ref_counter SET scan_count = @count, last_scanned_at = @last WHERE page_id = @pageId AND ref = @ref`,
  );

  const CODES_PER_TRANSACTION = 5_000;
  let offset = 0;
  for (let first = 0; first < options.codes; first += CODES_PER_TRANSACTION) {
    const last = Math.min(options.codes, first + CODES_PER_TRANSACTION);
    db.transaction(() => {
      for (let k = first; k < last; k += 1) {
        const count = scansOfCode(k, options.averagePerCode);
        const ref = benchRef(k);
        insertScans.run({ count, offset, pageId: options.pageId, ref, epoch: SCAN_EPOCH });
        const values = { count, last: SCAN_EPOCH + offset + count - 1, pageId: options.pageId, ref };
        updateCode.run(values);
        updateCounter.run(values);
        offset += count;
      }
    })();
    options.progress?.(offset);
  }
  closeAfterSeeding(db, path);
  return { scans: offset, ms: performance.now() - started };
}
