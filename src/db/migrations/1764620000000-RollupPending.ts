import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * What ingest adds to the rollups, appended rather than merged in place
 * (src/stats/scan-rollups.ts): one row per (page, ref, source, 15-minute slot) of each
 * transaction that stores scans, with its counts and a sketch of its few people. Merging
 * into the rollup rows read and rewrote their sketches (up to 60 KB each, at five levels)
 * in every transaction; the pending rows are folded into them in batches instead, and the
 * statistics read both. `slot` is the 15-minute slot's start (epoch ms); `source` and
 * `ref` are keyed as in scan_rollup_ref.
 */
export class RollupPending1764620000000 implements MigrationInterface {
  name = 'RollupPending1764620000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const postgres = queryRunner.connection.driver.options.type === 'postgres';
    await queryRunner.query(`
      CREATE TABLE scan_rollup_pending (
        id ${postgres ? 'bigserial' : 'integer'} PRIMARY KEY,
        page_id varchar(64) NOT NULL,
        ref ${postgres ? 'varchar(2083)' : 'varchar(250)'} NOT NULL,
        source varchar(65) NOT NULL,
        slot bigint NOT NULL,
        total integer NOT NULL,
        first_time integer NOT NULL,
        people ${postgres ? 'bytea' : 'blob'} NOT NULL
      )`);
    // The statistics read the pending rows of a window, of some pages or of all.
    await queryRunner.query(`CREATE INDEX ix_scan_rollup_pending_page ON scan_rollup_pending (page_id, slot)`);
    await queryRunner.query(`CREATE INDEX ix_scan_rollup_pending_slot ON scan_rollup_pending (slot)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE scan_rollup_pending`);
  }
}
