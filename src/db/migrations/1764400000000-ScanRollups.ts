import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Builds the rollups of the scans already stored (the statistics capability implements it). */
export type RollupBackfill = (queryRunner: QueryRunner) => Promise<void>;

/**
 * Rollups of the scans for statistics whose cost does not grow with the number of scans
 * (src/stats/scan-rollups.ts): per page, per (page, ref, source) and per (page, source), every 15
 * minutes and at coarser levels (`minutes` long, starting at `slot`, epoch ms). `people`
 * is a sketch of the distinct people (src/stats/people-sketch.ts). The rows of scans
 * already stored are built in the same migration: the backfill is passed in, as the
 * foundation imports no capability.
 */
export function scanRollupsMigration(backfill: RollupBackfill): new () => MigrationInterface {
  return class ScanRollups1764400000000 implements MigrationInterface {
    name = 'ScanRollups1764400000000';

    async up(queryRunner: QueryRunner): Promise<void> {
      const postgres = queryRunner.connection.driver.options.type === 'postgres';
      const bytes = postgres ? 'bytea' : 'blob';
      const ref = postgres ? 'varchar(2083)' : 'varchar(250)';
      // (minutes, slot) first: the statistics read given slots of one, several or every page.
      await queryRunner.query(`
        CREATE TABLE scan_rollup_page (
          minutes integer NOT NULL,
          slot bigint NOT NULL,
          page_id varchar(64) NOT NULL,
          total integer NOT NULL,
          first_time integer NOT NULL,
          people ${bytes},
          PRIMARY KEY (minutes, slot, page_id)
        )`);
      // (page, ref) first: Code.stats reads one code's slots; topCodes reads slots of pages through the index.
      // source: '' when Messenger sent none, else '=' and the source.
      await queryRunner.query(`
        CREATE TABLE scan_rollup_ref (
          page_id varchar(64) NOT NULL,
          ref ${ref} NOT NULL,
          minutes integer NOT NULL,
          slot bigint NOT NULL,
          source varchar(65) NOT NULL,
          total integer NOT NULL,
          first_time integer NOT NULL,
          people ${bytes},
          PRIMARY KEY (page_id, ref, minutes, slot, source)
        )`);
      await queryRunner.query(`CREATE INDEX ix_scan_rollup_ref_slot ON scan_rollup_ref (minutes, slot, page_id)`);
      await queryRunner.query(`
        CREATE TABLE scan_rollup_source (
          minutes integer NOT NULL,
          slot bigint NOT NULL,
          page_id varchar(64) NOT NULL,
          source varchar(65) NOT NULL,
          total integer NOT NULL,
          PRIMARY KEY (minutes, slot, page_id, source)
        )`);
      await backfill(queryRunner);
    }

    async down(queryRunner: QueryRunner): Promise<void> {
      await queryRunner.query(`DROP TABLE scan_rollup_source`);
      await queryRunner.query(`DROP TABLE scan_rollup_ref`);
      await queryRunner.query(`DROP TABLE scan_rollup_page`);
    }
  };
}
