import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A subscriber resuming with `scanned(pageId:, after:)` (a page's dashboard) or
 * `scanned(ref:, after:)` / `codeId:` (a code's) reads that page's or code's scans after its
 * position. With only the stream's own index the read walks every scan stored since then,
 * of every page and code: a wall of 1,000 screens over 50 codes back from an outage read 50
 * times the rows it needed, for each screen. With these, each reads only its own.
 */
export class StreamByPageAndRef1764640000000 implements MigrationInterface {
  name = 'StreamByPageAndRef1764640000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX ix_scan_page_stream ON scan (page_id, stream_seq)`);
    await queryRunner.query(`CREATE INDEX ix_scan_ref_stream ON scan (ref, stream_seq)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX ix_scan_ref_stream`);
    await queryRunner.query(`DROP INDEX ix_scan_page_stream`);
  }
}
