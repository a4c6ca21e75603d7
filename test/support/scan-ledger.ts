import Sqlite from 'better-sqlite3';
import { Client } from 'pg';

/**
 * A connection of its own to a gateway's database (the gateway may be dead, or refusing
 * writes): what was really committed, read without the gateway's help.
 */
export interface DatabaseReader {
  query<Row = Record<string, unknown>>(sql: string): Promise<Row[]>;
  close(): Promise<void>;
}

/** Opens `databaseUrl` (a gateway's DATABASE_URL: sqlite:<file>, or postgres://…?schema=…) for reading. */
export async function openDatabase(databaseUrl: string): Promise<DatabaseReader> {
  if (databaseUrl.startsWith('sqlite:')) {
    const handle = new Sqlite(databaseUrl.slice('sqlite:'.length), { fileMustExist: true });
    handle.pragma('busy_timeout = 5000');
    return {
      query: async <Row>(sql: string) => handle.prepare(sql).all() as Row[],
      close: async () => void handle.close(),
    };
  }
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema');
  url.searchParams.delete('schema');
  const client = new Client({ connectionString: url.toString(), ...(schema ? { options: `-c search_path=${schema}` } : {}) });
  await client.connect();
  return {
    query: async <Row>(sql: string) => (await client.query(sql)).rows as Row[],
    close: () => client.end(),
  };
}

/** The ids of every stored scan. */
export async function storedScanIds(db: DatabaseReader): Promise<Set<string>> {
  return new Set((await db.query<{ id: string }>('SELECT id FROM scan')).map((row) => row.id));
}

/** The number of stored scans of each ref ('' for the static code), on one page or all. */
export async function scansPerRef(db: DatabaseReader): Promise<Map<string, number>> {
  const rows = await db.query<{ ref: string; n: number | string }>('SELECT ref, COUNT(*) AS n FROM scan GROUP BY ref');
  return new Map(rows.map((row) => [row.ref, Number(row.n)]));
}

/**
 * Every way the stored counts can disagree with the stored scans, as readable lines (none
 * when consistent): a (page, ref) counter that is not the number of its scans or not their
 * latest time, a code whose copy differs from its counter, scans with no counter at all.
 * A transaction written halfway (a scan without its count, a count without its scan) shows here.
 */
export async function countMismatches(db: DatabaseReader): Promise<string[]> {
  const counted = await db.query<Record<string, number | string | null>>(`
    SELECT r.page_id, r.ref, r.scan_count AS counter, r.last_scanned_at AS counter_last,
      (SELECT COUNT(*) FROM scan s WHERE s.page_id = r.page_id AND s.ref = r.ref) AS scans,
      (SELECT COALESCE(MAX(s.occurred_at), 0) FROM scan s WHERE s.page_id = r.page_id AND s.ref = r.ref) AS scans_last,
      c.scan_count AS code_count, c.last_scanned_at AS code_last
    FROM ref_counter r LEFT JOIN code c ON c.page_id = r.page_id AND c.ref = r.ref`);
  const mismatches: string[] = [];
  for (const row of counted) {
    const name = `page ${row.page_id} ref "${row.ref}"`;
    if (Number(row.counter) !== Number(row.scans)) mismatches.push(`${name}: counter ${row.counter}, ${row.scans} scans stored`);
    if (Number(row.counter_last) !== Number(row.scans_last)) {
      mismatches.push(`${name}: counter's last scan ${row.counter_last}, latest stored scan ${row.scans_last}`);
    }
    if (row.code_count !== null && Number(row.code_count) !== Number(row.counter)) {
      mismatches.push(`${name}: code.scan_count ${row.code_count}, counter ${row.counter}`);
    }
    if (row.code_last !== null && Number(row.code_last) !== Number(row.counter_last)) {
      mismatches.push(`${name}: code.last_scanned_at ${row.code_last}, counter's ${row.counter_last}`);
    }
  }
  const uncounted = await db.query<{ page_id: string; ref: string; n: number | string }>(`
    SELECT s.page_id, s.ref, COUNT(*) AS n FROM scan s
    WHERE NOT EXISTS (SELECT 1 FROM ref_counter r WHERE r.page_id = s.page_id AND r.ref = s.ref)
    GROUP BY s.page_id, s.ref`);
  for (const row of uncounted) mismatches.push(`page ${row.page_id} ref "${row.ref}": ${row.n} scans stored, no counter`);
  return mismatches;
}
