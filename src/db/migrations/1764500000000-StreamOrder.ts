import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Storage order of scans (`Scan.streamCursor`, `scanned(after:)`): each scan gets the next
 * position of one stream at the end of the transaction that stores it, while that
 * transaction holds the stream's single row until its commit. Positions are therefore
 * contiguous and commit in order on every instance: a reader that has seen position n has
 * seen every position below it, which is what lets a subscriber resume without a gap and the
 * live feed notice one. A row is inserted before it is numbered, so the column is nullable
 * (NULL only inside the storing transaction).
 *
 * Scans stored before this migration are numbered in the order they were received.
 */
export class StreamOrder1764500000000 implements MigrationInterface {
  name = 'StreamOrder1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE scan ADD COLUMN stream_seq bigint`);
    await queryRunner.query(`
      UPDATE scan SET stream_seq = numbered.seq
      FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY received_at, id) AS seq FROM scan) AS numbered
      WHERE numbered.id = scan.id`);
    await queryRunner.query(`CREATE UNIQUE INDEX ux_scan_stream_seq ON scan (stream_seq)`);
    await queryRunner.query(`CREATE TABLE scan_stream (id integer PRIMARY KEY, position bigint NOT NULL)`);
    await queryRunner.query(`INSERT INTO scan_stream (id, position) SELECT 1, COALESCE(MAX(stream_seq), 0) FROM scan`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE scan_stream`);
    await queryRunner.query(`DROP INDEX ux_scan_stream_seq`);
    await queryRunner.query(`ALTER TABLE scan DROP COLUMN stream_seq`);
  }
}
