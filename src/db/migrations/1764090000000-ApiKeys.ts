import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * API keys, stored as the SHA-256 of the secret with a displayable prefix. A request is
 * authenticated by the hash (unique index); the open-gateway rule asks whether any key
 * is still active (index on revoked_at).
 */
export class ApiKeys1764090000000 implements MigrationInterface {
  name = 'ApiKeys1764090000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE api_key (
        id varchar(36) PRIMARY KEY,
        name varchar(100) NOT NULL,
        role varchar(8) NOT NULL,
        page_ids text,
        prefix varchar(16) NOT NULL,
        secret_hash varchar(64) NOT NULL,
        created_at bigint NOT NULL,
        last_used_at bigint,
        revoked_at bigint
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX ux_api_key_secret_hash ON api_key (secret_hash)`);
    await queryRunner.query(`CREATE INDEX ix_api_key_created ON api_key (created_at, id)`);
    await queryRunner.query(`CREATE INDEX ix_api_key_revoked ON api_key (revoked_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE api_key`);
  }
}
