import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Orphan refs (scanned, but no code has them) are the counters without a code: a flag
 * kept on the counter by code creation, and a partial index over the orphans only, most
 * scanned first, so orphanRefs reads a page of them whatever the number of codes.
 */
export class OrphanRefs1764100000000 implements MigrationInterface {
  name = 'OrphanRefs1764100000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE ref_counter ADD COLUMN has_code smallint NOT NULL DEFAULT 0`);
    await queryRunner.query(
      `UPDATE ref_counter SET has_code = 1
       WHERE EXISTS (SELECT 1 FROM code WHERE code.page_id = ref_counter.page_id AND code.ref = ref_counter.ref)`,
    );
    await queryRunner.query(`CREATE INDEX ix_ref_counter_orphans ON ref_counter (scan_count DESC, page_id, ref) WHERE has_code = 0`);
    await queryRunner.query(`CREATE INDEX ix_ref_counter_page_orphans ON ref_counter (page_id, scan_count DESC, ref) WHERE has_code = 0`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX ix_ref_counter_page_orphans`);
    await queryRunner.query(`DROP INDEX ix_ref_counter_orphans`);
    await queryRunner.query(`ALTER TABLE ref_counter DROP COLUMN has_code`);
  }
}
