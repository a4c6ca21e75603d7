/**
 * The rollup rows that ingest (pending rows, then folds) and the backfill write, against rows
 * made the plain way: every scan counted into its row at every level and its person hashed
 * into that row's sketch. The statements go to RecordingSql, which keeps the few tables they
 * touch in memory, so that grouping, folding and the levels are checked on random scans
 * without a database (test/scan-rollups.e2e.test.ts runs them on SQLite and PostgreSQL).
 */
import type { Database } from '../../src/db/database';
import { type Scan } from '../../src/scans/scan.entity';
import { ScanKind } from '../../src/scans/scan-kind';
import type { TransactionSql } from '../../src/scans/scan.store';
import { PeopleSketch, personHash } from '../../src/stats/people-sketch';
import { backfillRollups, compactRollups, LEVEL_MINUTES, ScanGroups, ScanRollups, SLOT_MS, sourceKey } from '../../src/stats/scan-rollups';
import { PAGES, REFS, scanAt, SOURCES, START } from '../support/rollup-scans';
import { Prng } from '../support/prng';

type Row = Record<string, unknown>;

const KEYS: Record<string, string[]> = {
  scan_rollup_page: ['minutes', 'slot', 'page_id'],
  scan_rollup_ref: ['page_id', 'ref', 'minutes', 'slot', 'source'],
  scan_rollup_source: ['minutes', 'slot', 'page_id', 'source'],
};

/** The statements of src/stats/scan-rollups.ts on SQLite, run on tables in memory. */
class RecordingSql implements TransactionSql {
  readonly kind = 'sqlite';
  readonly tables = new Map<string, Map<string, Row>>(Object.keys(KEYS).map((table) => [table, new Map()]));
  pending: Row[] = [];
  folds = 0;

  constructor(private readonly scanRows: Row[] = []) {}

  param(): string {
    return '?';
  }

  query<Result = Row>(sql: string, parameters: unknown[]): Promise<Result[]> {
    return Promise.resolve(this.run(sql, parameters) as Result[]);
  }

  private run(sql: string, parameters: unknown[]): Row[] {
    const text = sql.replace(/\s+/g, ' ').trim();
    if (text.startsWith('SELECT COUNT(*) AS pending FROM scan_rollup_pending')) return [{ pending: this.pending.length }];
    if (text.startsWith('DELETE FROM scan_rollup_pending RETURNING')) {
      this.folds += 1;
      const taken = this.pending;
      this.pending = [];
      return taken;
    }
    if (text.startsWith('SELECT id, page_id, ref, kind, source, sender_hash, occurred_at FROM scan WHERE id >')) {
      const limit = Number(/LIMIT (\d+)/.exec(text)?.[1]);
      return this.scanRows.filter((row) => String(row.id) > String(parameters[0])).slice(0, limit);
    }
    const insert = /^INSERT INTO (\w+) \(([^)]*)\) VALUES/.exec(text);
    if (insert) {
      const [, table, columnList] = insert;
      const columns = columnList.split(', ');
      const rows: Row[] = [];
      for (let offset = 0; offset < parameters.length; offset += columns.length) {
        rows.push(Object.fromEntries(columns.map((column, index) => [column, parameters[offset + index]])));
      }
      if (table === 'scan_rollup_pending') {
        this.pending.push(...rows);
        return [];
      }
      const stored = rows.map((row) => this.upsert(table, row));
      return text.includes(' RETURNING ') ? stored.map((row) => ({ ...row })) : [];
    }
    const update = /^UPDATE (\w+) SET people = \? WHERE (.*)$/.exec(text);
    if (update) {
      const [, table, where] = update;
      const columns = where.split(' AND ').map((condition) => condition.replace(' = ?', ''));
      const key = JSON.stringify(columns.map((_, index) => parameters[index + 1]));
      expect(columns).toEqual(KEYS[table]);
      const row = this.tables.get(table)?.get(key) as Row;
      row.people = parameters[0];
      return [];
    }
    throw new Error(`RecordingSql does not know ${text.slice(0, 80)}`);
  }

  /** INSERT … ON CONFLICT DO UPDATE adding the counts, the sketch of a new row as given. */
  private upsert(table: string, row: Row): Row {
    const rows = this.tables.get(table) as Map<string, Row>;
    const key = JSON.stringify(KEYS[table].map((column) => row[column]));
    const existing = rows.get(key);
    if (!existing) {
      rows.set(key, row);
      return row;
    }
    existing.total = Number(existing.total) + Number(row.total);
    if ('first_time' in row) existing.first_time = Number(existing.first_time) + Number(row.first_time);
    return existing;
  }

  /** Every row of a rollup table in key order, sketches as hex. */
  rowsOf(table: string): Row[] {
    return [...(this.tables.get(table) as Map<string, Row>).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, row]) =>
        Object.fromEntries(Object.entries(row).map(([column, value]) => [column, Buffer.isBuffer(value) ? value.toString('hex') : value])),
      );
  }
}

/**
 * Two days of scans by few people (exact sketches), many on or 1 ms beside a boundary of
 * 15 minutes, of a level, or of the day; and 10,500 people in one page's quarter hour (dense).
 */
function randomScans(random: Prng): Scan[] {
  const scans: Scan[] = [];
  for (let index = 0; index < 3_000; index += 1) {
    const boundary = START + random.int(2 * 96) * SLOT_MS;
    const at = random.chance(0.4) ? boundary + random.pick([-1, 0, 1]) : START + random.int(2 * 86_400_000);
    const kind = random.chance(0.3) ? ScanKind.POSTBACK : ScanKind.REFERRAL;
    scans.push(scanAt(at, random.pick(PAGES), random.pick(REFS), random.pick(SOURCES), random.int(400), kind));
  }
  for (let person = 0; person < 10_500; person += 1) {
    scans.push(scanAt(START + 86_400_000 + SLOT_MS + person * 80, PAGES[1], 'menu', 'SHORTLINK', 1_000 + person, ScanKind.REFERRAL));
  }
  return scans;
}

/** The rows every scan makes, each counted and hashed into its row at every level. */
function plainRows(scans: readonly Scan[]): Record<string, Row[]> {
  const tables = new Map<string, Map<string, { row: Row; hashes?: number[] }>>(Object.keys(KEYS).map((table) => [table, new Map()]));
  for (const scan of scans) {
    const at = scan.occurredAt.getTime();
    for (const minutes of LEVEL_MINUTES) {
      const slot = at - (at % (minutes * 60_000));
      const values: Row = { minutes, slot, page_id: scan.pageId, ref: scan.ref ?? '', source: sourceKey(scan.source) };
      for (const [table, key] of Object.entries(KEYS)) {
        const rows = tables.get(table) as Map<string, { row: Row; hashes?: number[] }>;
        const id = JSON.stringify(key.map((column) => values[column]));
        let entry = rows.get(id);
        if (!entry) {
          const row: Row = Object.fromEntries(key.map((column) => [column, values[column]]));
          entry = table === 'scan_rollup_source' ? { row: { ...row, total: 0 } } : { row: { ...row, total: 0, first_time: 0 }, hashes: [] };
          rows.set(id, entry);
        }
        entry.row.total = Number(entry.row.total) + 1;
        if (entry.hashes) {
          if (scan.kind === ScanKind.POSTBACK) entry.row.first_time = Number(entry.row.first_time) + 1;
          entry.hashes.push(personHash(scan.senderHash));
        }
      }
    }
  }
  return Object.fromEntries(
    [...tables.entries()].map(([table, rows]) => [
      table,
      [...rows.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([, { row, hashes }]) => (hashes ? { ...row, people: PeopleSketch.fromHashes(hashes).serialize().toString('hex') } : row)),
    ]),
  );
}

/** The columns of a recorded row in the order and types plainRows makes them. */
function comparable(rows: Row[], like: Row[]): Row[] {
  return rows.map((row) =>
    Object.fromEntries(
      Object.keys(like[0]).map((column) => [column, typeof like[0][column] === 'number' ? Number(row[column]) : row[column]]),
    ),
  );
}

describe('scan rollups', () => {
  jest.setTimeout(60_000);
  const scans = randomScans(new Prng(20261203));
  const expected = plainRows(scans);

  it('groups scans by page, ref, source and 15-minute slot as a key string per scan grouped them', () => {
    const random = new Prng(99);
    const sample = Array.from({ length: 2_000 }, () => random.pick(scans));
    const grouped = new ScanGroups();
    for (const scan of sample) {
      grouped.add(scan.pageId, scan.ref ?? '', scan.source, scan.occurredAt.getTime(), scan.senderHash, scan.kind === ScanKind.POSTBACK);
    }
    // The grouping before ScanGroups: one key string per scan, groups in the order they first appear.
    const byKey = new Map<
      string,
      { pageId: string; ref: string; source: string; slot: number; total: number; firstTime: number; hashes: number[] }
    >();
    for (const scan of sample) {
      const at = scan.occurredAt.getTime();
      const slot = at - (((at % SLOT_MS) + SLOT_MS) % SLOT_MS);
      const key = `${scan.pageId}\u0000${scan.ref ?? ''}\u0000${sourceKey(scan.source)}\u0000${slot}`;
      let group = byKey.get(key);
      if (!group) {
        group = { pageId: scan.pageId, ref: scan.ref ?? '', source: sourceKey(scan.source), slot, total: 0, firstTime: 0, hashes: [] };
        byKey.set(key, group);
      }
      group.total += 1;
      if (scan.kind === ScanKind.POSTBACK) group.firstTime += 1;
      group.hashes.push(personHash(scan.senderHash));
    }
    expect(grouped.groups.length).toBeGreaterThan(100);
    expect(grouped.groups.map(({ sketch, ...group }) => ({ ...group, people: sketch.serialize().toString('hex') }))).toEqual(
      [...byKey.values()].map(({ hashes, ...group }) => ({
        ...group,
        people: PeopleSketch.fromHashes(hashes).serialize().toString('hex'),
      })),
    );
  });

  it('ingest, folded every few transactions, writes the rows of every scan at every level', async () => {
    const sql = new RecordingSql();
    // apply on SQLite never reaches the database itself (only a fold on PostgreSQL does).
    const rollups = new ScanRollups(undefined as unknown as Database, { compactAt: 30 });
    const random = new Prng(5);
    const shuffled = scans
      .map((scan) => ({ scan, order: random.next() }))
      .sort((a, b) => a.order - b.order)
      .map(({ scan }) => scan);
    for (let index = 0; index < shuffled.length;) {
      const size = 1 + random.int(400);
      await rollups.apply(sql, shuffled.slice(index, index + size));
      index += size;
    }
    await compactRollups(sql);
    expect(sql.folds).toBeGreaterThan(10);
    for (const [table, rows] of Object.entries(expected)) expect(comparable(sql.rowsOf(table), rows)).toEqual(rows);
  });

  it('the backfill writes the same rows', async () => {
    const scanRows = [...scans]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((scan) => ({
        id: scan.id,
        page_id: scan.pageId,
        ref: scan.ref ?? '',
        kind: scan.kind,
        source: scan.source,
        sender_hash: scan.senderHash,
        occurred_at: scan.occurredAt.getTime(),
      }));
    const sql = new RecordingSql(scanRows);
    expect(await backfillRollups(sql)).toBe(scans.length);
    for (const [table, rows] of Object.entries(expected)) expect(comparable(sql.rowsOf(table), rows)).toEqual(rows);
  });
});
