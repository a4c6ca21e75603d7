import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A subscriber resuming with `scanned(ref:, after:)` or `codeId:` (a code's dashboard) reads
 * that code's scans after its position. With only the stream's own index the read walks every
 * scan stored since then, of every code: a wall of 1,000 screens over 50 codes back from an
 * outage read 50 times the rows it needed, for each screen. With this one, each reads its own.
 *
 * Only by ref: each index on the scan table is paid by every scan stored (one on (page_id,
 * stream_seq) too cost the single-scan webhook a further fifth of its throughput); a page's
 * dashboard resuming reads the stream's range, which for most deployments is its page's.
 */
export class StreamByRef1764640000000 implements MigrationInterface {
  name = 'StreamByRef1764640000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE INDEX ix_scan_ref_stream ON scan (ref, stream_seq)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX ix_scan_ref_stream`);
  }
}
