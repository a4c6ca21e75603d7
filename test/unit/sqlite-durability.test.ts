import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SqliteDurability } from '../../src/db/sqlite-durability';

describe('SqliteDurability', () => {
  let directory: string;
  const opened: BetterSqlite3.Database[] = [];
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'durability-'));
  });
  afterEach(() => {
    for (const handle of opened.splice(0)) handle.close();
    rmSync(directory, { recursive: true, force: true });
  });

  function open(name: string, pragmas: string[]): BetterSqlite3.Database {
    const handle = new BetterSqlite3(join(directory, name));
    opened.push(handle);
    for (const pragma of pragmas) handle.pragma(pragma);
    handle.exec('CREATE TABLE IF NOT EXISTS t (v TEXT)');
    return handle;
  }
  const synchronous = (handle: BetterSqlite3.Database) => handle.pragma('synchronous', { simple: true });

  it('takes over the fsync of a WAL file whose commits sync (FULL or EXTRA)', () => {
    expect(SqliteDurability.of(open('full.db', ['journal_mode = WAL', 'synchronous = FULL']))).toBeDefined();
    expect(SqliteDurability.of(open('extra.db', ['journal_mode = WAL', 'synchronous = EXTRA']))).toBeDefined();
  });

  it('leaves alone a database in memory, in another journal mode, or configured not to sync', () => {
    const memory = new BetterSqlite3(':memory:');
    opened.push(memory);
    expect(SqliteDurability.of(memory)).toBeUndefined();
    expect(SqliteDurability.of(open('delete.db', ['journal_mode = DELETE', 'synchronous = FULL']))).toBeUndefined();
    expect(SqliteDurability.of(open('normal.db', ['journal_mode = WAL', 'synchronous = NORMAL']))).toBeUndefined();
  });

  it('commits with SQLite’s own fsync off, and restores the connection’s level after, even when the work fails', async () => {
    const handle = open('full.db', ['journal_mode = WAL', 'synchronous = FULL']);
    const durability = SqliteDurability.of(handle) as SqliteDurability;
    const seen = await durability.commit(async () => {
      handle.exec("BEGIN IMMEDIATE; INSERT INTO t VALUES ('a'); COMMIT");
      return synchronous(handle);
    });
    expect(seen).toBe(1);
    expect(synchronous(handle)).toBe(2);
    await expect(
      durability.commit(async () => {
        throw new Error('work failed');
      }),
    ).rejects.toThrow('work failed');
    expect(synchronous(handle)).toBe(2);
    await durability.flush();
    expect(handle.prepare('SELECT v FROM t').pluck().all()).toEqual(['a']);
  });

  it('runs one fsync at a time: callers during one share the next', async () => {
    const handle = open('full.db', ['journal_mode = WAL', 'synchronous = FULL']);
    const durability = SqliteDurability.of(handle) as SqliteDurability;
    const first = durability.flush();
    const second = durability.flush();
    const third = durability.flush();
    expect(second).not.toBe(first);
    expect(third).toBe(second);
    await Promise.all([first, second, third]);
    // Nothing in flight any more: a new call starts its own.
    const fourth = durability.flush();
    expect(fourth).not.toBe(second);
    await fourth;
  });

  it('syncs the database file when there is no WAL file, and reports a failure to sync', async () => {
    const handle = open('full.db', ['journal_mode = WAL', 'synchronous = FULL']);
    const durability = SqliteDurability.of(handle) as SqliteDurability;
    unlinkSync(join(directory, 'full.db-wal'));
    await expect(durability.flush()).resolves.toBeUndefined();
    unlinkSync(join(directory, 'full.db'));
    await expect(durability.flush()).rejects.toMatchObject({ code: 'ENOENT' });
    // A failed flush does not stop the next one from running.
    await expect(durability.flush()).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
