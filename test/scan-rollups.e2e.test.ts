/**
 * The rollups that ingest maintains (in every transaction that stores scans, several
 * instances at once on PostgreSQL) are the rollups the migration builds from the same
 * scans stored before it existed: row for row, counts and sketches byte for byte, once the
 * rows ingest leaves pending are folded in (here after every few transactions, and at the end).
 */
import type { MigrationInterface } from 'typeorm';
import { createDataSource, MIGRATIONS } from '../src/app/data-source';
import { loadConfig } from '../src/config';
import { Database } from '../src/db/database';
import { type Scan } from '../src/scans/scan.entity';
import { ScanKind } from '../src/scans/scan-kind';
import { ScanWriter } from '../src/scans/scan.store';
import { compactRollups, queryRunnerSql, ScanRollups } from '../src/stats/scan-rollups';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases, type TestDatabase } from './support/databases';
import { PAGES, REFS, scanAt, SOURCES, START } from './support/rollup-scans';
import { Prng } from './support/prng';

reportSkippedDatabases();

/** The same scans on every run, so that a failure can be replayed. */
function randomSource(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

/**
 * Scans over four days with few people (exact sketches), on 15-minute boundaries and 1 ms
 * either side, and one quarter hour of one page with 10,500 people (dense sketches at every level).
 */
function scans(): Scan[] {
  const random = randomSource(20261025);
  const pick = <T>(values: readonly T[]) => values[Math.floor(random() * values.length)];
  const list: Scan[] = [];
  for (let index = 0; index < 2_000; index += 1) {
    const boundary = START + Math.floor(random() * 4 * 96) * 900_000;
    const at = random() < 0.3 ? boundary + pick([-1, 0, 1]) : START + Math.floor(random() * 4 * 86_400_000);
    list.push(
      scanAt(
        at,
        pick(PAGES),
        pick(REFS),
        pick(SOURCES),
        Math.floor(random() * 300),
        random() < 0.3 ? ScanKind.POSTBACK : ScanKind.REFERRAL,
      ),
    );
  }
  for (let person = 0; person < 10_500; person += 1) {
    list.push(scanAt(START + 86_400_000 + 900_000 + person * 80, PAGES[1], 'menu', 'SHORTLINK', 1_000 + person, ScanKind.REFERRAL));
  }
  return list;
}

/** Every row of the rollup tables, in key order, sketches as hex. */
async function rollupRows(db: Database): Promise<Record<string, unknown[]>> {
  const tables = {
    scan_rollup_page: 'minutes, slot, page_id',
    scan_rollup_ref: 'page_id, ref, minutes, slot, source',
    scan_rollup_source: 'minutes, slot, page_id, source',
  };
  const rows: Record<string, unknown[]> = {};
  for (const [table, key] of Object.entries(tables)) {
    const result: Record<string, unknown>[] = await db.dataSource.query(`SELECT * FROM ${table} ORDER BY ${key}`);
    rows[table] = result.map((row) =>
      Object.fromEntries(
        Object.entries(row).map(([column, value]) => [
          column,
          Buffer.isBuffer(value) ? value.toString('hex') : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value,
        ]),
      ),
    );
  }
  return rows;
}

/** Writes `all` in requests of 50, `concurrency` of them in flight, through `writers` in turn. */
async function ingest(writers: ScanWriter[], all: Scan[], concurrency: number): Promise<void> {
  const requests: Scan[][] = [];
  for (let index = 0; index < all.length; index += 50) requests.push(all.slice(index, index + 50));
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (next < requests.length) {
        const request = requests[next];
        next += 1;
        await writers[worker % writers.length].write(request);
      }
    }),
  );
}

describe.each(DATABASE_KINDS)('scan rollups on %s', (kind) => {
  jest.setTimeout(300_000);
  const databases: TestDatabase[] = [];
  const opened: Database[] = [];

  afterAll(async () => {
    for (const db of opened) await db.close();
    for (const database of databases) await database.dispose();
  });

  async function open(database: TestDatabase): Promise<Database> {
    const db = await Database.open(createDataSource(loadConfig({ DATABASE_URL: database.url }).database));
    opened.push(db);
    return db;
  }

  it('builds in the migration, from stored scans, the rows that ingest maintains (redeliveries and concurrent instances included)', async () => {
    const all = scans();
    // Maintained: on PostgreSQL two instances (pools) ingest at once, contending for the same rows.
    const maintained = await createTestDatabase(kind);
    databases.push(maintained);
    const instances = kind === 'postgres' ? [await open(maintained), await open(maintained)] : [await open(maintained)];
    // Folded every 40 pending rows: many folds, some while the other instance appends.
    const rollups = instances.map((db) => new ScanRollups(db, { compactAt: 40 }));
    const writers = instances.map((db, index) => new ScanWriter(db, [rollups[index]]));
    const random = randomSource(7);
    const shuffled = all
      .map((scan) => ({ scan, order: random() }))
      .sort((a, b) => a.order - b.order)
      .map(({ scan }) => scan);
    await ingest(writers, shuffled, 8);
    // Redelivered: stored already, so added to nothing.
    await ingest(writers, all.slice(0, 500), 4);
    // PostgreSQL folds beside the ingest: the folds under way end first.
    for (const step of rollups) await step.settled();
    // Folded along the way (in the ingest transaction on SQLite, beside it on PostgreSQL), not only by the fold below.
    const [{ folded }] = await instances[0].dataSource.query(`SELECT COUNT(*) AS folded FROM scan_rollup_page`);
    expect(Number(folded)).toBeGreaterThan(0);
    // What is left pending (on PostgreSQL maybe nothing: a fold due during another runs after it) is folded here.
    const [{ pending }] = await instances[0].dataSource.query(`SELECT COUNT(*) AS pending FROM scan_rollup_pending`);
    const folder = instances[0].dataSource.createQueryRunner();
    try {
      await folder.startTransaction();
      expect(await compactRollups(queryRunnerSql(folder))).toBe(Number(pending));
      await folder.commitTransaction();
    } finally {
      await folder.release();
    }

    // Backfilled: the scans stored before the rollups existed, then the migration.
    const backfilled = await createTestDatabase(kind);
    databases.push(backfilled);
    const db = await open(backfilled);
    // The rollups migration alone, undone then run again (later migrations stay: ingest needs them).
    const rollupsMigration = MIGRATIONS.map((Migration) => new Migration()).find(
      (migration) => migration.name === 'ScanRollups1764400000000',
    ) as MigrationInterface;
    const runner = db.dataSource.createQueryRunner();
    try {
      await rollupsMigration.down(runner);
      await ingest([new ScanWriter(db)], all, 4);
      await rollupsMigration.up(runner);
    } finally {
      await runner.release();
    }

    const expected = await rollupRows(instances[0]);
    const actual = await rollupRows(db);
    expect(actual.scan_rollup_page.length).toBeGreaterThan(0);
    expect(actual).toEqual(expected);
    const [{ total }] = await db.dataSource.query(`SELECT SUM(total) AS total FROM scan_rollup_page WHERE minutes = 15`);
    expect(Number(total)).toBe(all.length);
  });
});

if (DATABASE_KINDS.includes('postgres')) {
  describe('scan rollups folded beside the ingest on postgres', () => {
    jest.setTimeout(60_000);

    it('a fold that falls due while another runs is run after it, so nothing committed before is left pending', async () => {
      const database = await createTestDatabase('postgres');
      const db = await Database.open(createDataSource(loadConfig({ DATABASE_URL: database.url }).database));
      // A connection of the gateway's own pool (its search_path names the test's schema).
      const locker = db.dataSource.createQueryRunner();
      try {
        const scanOf = (minute: number) => scanAt(START + minute * 60_000, PAGES[0], 'menu', 'SHORTLINK', minute, ScanKind.REFERRAL);
        // Pending rows no fold takes (a bound never reached), then locked: the next fold's DELETE waits for them.
        await new ScanWriter(db, [new ScanRollups(db, { compactAt: 1_000_000_000 })]).write([scanOf(0)]);
        await locker.startTransaction();
        await locker.query('SELECT id FROM scan_rollup_pending FOR UPDATE');
        const [{ pid: lockerPid }] = (await locker.query('SELECT pg_backend_pid() AS pid')) as { pid: number }[];

        const rollups = new ScanRollups(db, { compactAt: 1 }); // every transaction makes a fold due
        const writer = new ScanWriter(db, [rollups]);
        await writer.write([scanOf(1)]);
        // That fold has begun (its DELETE took its snapshot) and waits for the locked rows.
        for (let waited = 0; ; waited += 1) {
          // Not on the locker: in a transaction, pg_stat_activity answers the same snapshot every time.
          const [{ waiting }] = (await db.dataSource.query(
            `SELECT COUNT(*) AS waiting FROM pg_stat_activity WHERE $1::integer = ANY (pg_blocking_pids(pid))`,
            [lockerPid],
          )) as { waiting: string }[];
          if (Number(waiting) === 1) break;
          if (waited > 500) throw new Error('the fold never began');
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        // Committed after that snapshot: the fold under way cannot see it.
        await writer.write([scanOf(2)]);
        await locker.commitTransaction();
        await rollups.settled();

        const [{ pending }] = await db.dataSource.query(`SELECT COUNT(*) AS pending FROM scan_rollup_pending`);
        expect(Number(pending)).toBe(0);
        const [{ total }] = await db.dataSource.query(`SELECT SUM(total) AS total FROM scan_rollup_page WHERE minutes = 15`);
        expect(Number(total)).toBe(3);
      } finally {
        if (locker.isTransactionActive) await locker.rollbackTransaction();
        await locker.release();
        await db.close();
        await database.dispose();
      }
    });
  });
}
