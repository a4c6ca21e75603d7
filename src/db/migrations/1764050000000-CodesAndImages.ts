import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Codes, their images, and the counters of scans per (page, ref).
 * Written as SQL that SQLite and PostgreSQL both accept; only the binary type differs.
 */
export class CodesAndImages1764050000000 implements MigrationInterface {
  name = 'CodesAndImages1764050000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const binary = queryRunner.connection.driver.options.type === 'postgres' ? 'bytea' : 'blob';
    await queryRunner.query(`
      CREATE TABLE code (
        id varchar(36) PRIMARY KEY,
        page_id varchar(64) NOT NULL,
        ref varchar(250) NOT NULL,
        type varchar(16) NOT NULL,
        label varchar(200),
        provider varchar(16) NOT NULL,
        image_size integer NOT NULL,
        image_id varchar(36) NOT NULL,
        created_at bigint NOT NULL,
        scan_count integer NOT NULL DEFAULT 0,
        last_scanned_at bigint NOT NULL DEFAULT 0,
        CONSTRAINT uq_code_page_ref UNIQUE (page_id, ref)
      )`);
    // One index per listing order, with and without the page filter, each ending in the
    // tie-break (created_at, id) so that every page of a listing is an index range scan.
    // last_scanned_at is 0 until the first scan, which sorts never-scanned codes last
    // without NULL handling in the keyset.
    await queryRunner.query(`CREATE INDEX ix_code_created ON code (created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_page_created ON code (page_id, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_scan_count ON code (scan_count, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_page_scan_count ON code (page_id, scan_count, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_last_scanned ON code (last_scanned_at, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_page_last_scanned ON code (page_id, last_scanned_at, created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_code_ref ON code (ref)`);

    await queryRunner.query(`
      CREATE TABLE code_image (
        id varchar(36) PRIMARY KEY,
        code_id varchar(36) NOT NULL REFERENCES code (id),
        size integer NOT NULL,
        content_type varchar(32) NOT NULL,
        provider varchar(16) NOT NULL,
        sha256 varchar(64) NOT NULL,
        byte_length integer NOT NULL,
        bytes ${binary} NOT NULL,
        created_at bigint NOT NULL,
        CONSTRAINT uq_code_image_size UNIQUE (code_id, size)
      )`);

    // Scans are counted per (page, ref) whether or not a code exists for it yet,
    // so that a code generated later starts with the scans already received.
    await queryRunner.query(`
      CREATE TABLE ref_counter (
        page_id varchar(64) NOT NULL,
        ref varchar(250) NOT NULL,
        scan_count integer NOT NULL DEFAULT 0,
        last_scanned_at bigint NOT NULL DEFAULT 0,
        PRIMARY KEY (page_id, ref)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE ref_counter`);
    await queryRunner.query(`DROP TABLE code_image`);
    await queryRunner.query(`DROP TABLE code`);
  }
}
