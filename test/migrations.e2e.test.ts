/**
 * Migrations that change only PostgreSQL functions, up and down on a real database.
 */
import { createDataSource } from '../src/app/data-source';
import { loadConfig } from '../src/config';
import { DropIngestTail1764670000000 } from '../src/db/migrations/1764670000000-DropIngestTail';
import { createTestDatabase, DATABASE_KINDS, reportSkippedDatabases } from './support/databases';

reportSkippedDatabases();

if (DATABASE_KINDS.includes('postgres')) {
  describe('migrations on postgres', () => {
    it('leave no function nobody calls (scan_ingest_tail); undoing its drop creates it again', async () => {
      const database = await createTestDatabase('postgres');
      const dataSource = createDataSource(loadConfig({ DATABASE_URL: database.url }).database, 'migrate');
      await dataSource.initialize();
      const runner = dataSource.createQueryRunner();
      try {
        await dataSource.runMigrations();
        const exists = async (name: string) =>
          ((await runner.query(`SELECT to_regproc($1) IS NOT NULL AS found`, [name])) as { found: boolean }[])[0].found;
        expect(await exists('scan_ingest')).toBe(true);
        expect(await exists('scan_ingest_tail')).toBe(false);

        const drop = new DropIngestTail1764670000000();
        await drop.down(runner);
        expect(await exists('scan_ingest_tail')).toBe(true);
        await drop.up(runner);
        expect(await exists('scan_ingest_tail')).toBe(false);
      } finally {
        await runner.release();
        await dataSource.destroy();
        await database.dispose();
      }
    });
  });
}
