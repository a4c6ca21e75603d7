import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Scans received through the Messenger webhook. The id is derived from the event
 * (time first, then a hash of its identity), so the primary key is also what makes
 * a redelivery count once, and new rows append at the end of every time-ordered index.
 */
export class Scans1764060000000 implements MigrationInterface {
  name = 'Scans1764060000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // On SQLite the rows are stored in id order (no separate rowid tree to maintain).
    const clustered = queryRunner.connection.driver.options.type === 'postgres' ? '' : ' WITHOUT ROWID';
    await queryRunner.query(`
      CREATE TABLE scan (
        id varchar(36) PRIMARY KEY,
        page_id varchar(64) NOT NULL,
        ref varchar(250) NOT NULL,
        kind varchar(16) NOT NULL,
        source varchar(64),
        sender_hash varchar(64) NOT NULL,
        occurred_at bigint NOT NULL,
        received_at bigint NOT NULL
      )${clustered}`);
    // Listings are newest first within a (page, ref), a page, or everything: ids sort
    // by event time, so the primary key and these two serve all three.
    await queryRunner.query(`CREATE INDEX ix_scan_page_ref ON scan (page_id, ref, id)`);
    await queryRunner.query(`CREATE INDEX ix_scan_page ON scan (page_id, id)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE scan`);
  }
}
