import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * topCodes and a page's sources read only the counts of scan_rollup_ref rows, thousands of
 * them for a month; through the (minutes, slot, page_id) index each one was a lookup of its
 * table row, which holds the row's sketch (up to 60 KB). An index that carries the ref,
 * the source and the count answers those reads alone.
 */
export class RollupRefCounts1764630000000 implements MigrationInterface {
  name = 'RollupRefCounts1764630000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX ix_scan_rollup_ref_counts ON scan_rollup_ref (minutes, slot, page_id, ref, source, total)`);
    await queryRunner.query(`DROP INDEX ix_scan_rollup_ref_slot`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX ix_scan_rollup_ref_slot ON scan_rollup_ref (minutes, slot, page_id)`);
    await queryRunner.query(`DROP INDEX ix_scan_rollup_ref_counts`);
  }
}
