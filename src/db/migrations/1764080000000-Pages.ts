import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The registry of pages. A token is stored only encrypted (AES-256-GCM), with the id of
 * its key so that decryption picks the right one and tokens under an older key can be
 * found and re-encrypted.
 */
export class Pages1764080000000 implements MigrationInterface {
  name = 'Pages1764080000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE page (
        id varchar(64) PRIMARY KEY,
        name varchar(200),
        relay_url varchar(2048),
        token_ciphertext text,
        token_key_id varchar(16),
        created_at bigint NOT NULL
      )`);
    // pages() lists in registration order: a keyset over (created_at, id).
    await queryRunner.query(`CREATE INDEX ix_page_created ON page (created_at, id)`);
    // Codes generated before the registry existed belong to pages that were configured
    // then: register those pages, so their codes stay reachable through Page.codes.
    await queryRunner.query(`INSERT INTO page (id, created_at) SELECT page_id, MIN(created_at) FROM code GROUP BY page_id`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE page`);
  }
}
