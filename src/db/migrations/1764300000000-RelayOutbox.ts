import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The bot relay's outbox: one row per delivery of a verified webhook request to a bot,
 * committed with the request's scans. `body` holds the exact bytes sent (the request's
 * own, or its share when it is split between bots). A pending row is due at
 * `next_attempt_at`; a process claiming it moves that time past its lease and writes its
 * `lease` token, so an instance that dies mid-delivery leaves the row due again.
 * relay_target keeps the counts per bot URL that outlive pruned rows.
 */
export class RelayOutbox1764300000000 implements MigrationInterface {
  name = 'RelayOutbox1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const bytes = queryRunner.connection.options.type === 'postgres' ? 'bytea' : 'blob';
    await queryRunner.query(`
      CREATE TABLE relay_delivery (
        id varchar(36) PRIMARY KEY,
        url varchar(2048) NOT NULL,
        body ${bytes} NOT NULL,
        content_type varchar(200) NOT NULL,
        signature_256 varchar(100) NOT NULL,
        signature_1 varchar(100),
        state varchar(16) NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        created_at bigint NOT NULL,
        next_attempt_at bigint NOT NULL,
        lease varchar(36),
        last_error varchar(500),
        finished_at bigint
      )`);
    await queryRunner.query(`CREATE INDEX ix_relay_delivery_due ON relay_delivery (state, next_attempt_at)`);
    await queryRunner.query(`
      CREATE TABLE relay_target (
        url varchar(2048) PRIMARY KEY,
        delivered bigint NOT NULL DEFAULT 0,
        given_up bigint NOT NULL DEFAULT 0,
        last_error varchar(500),
        last_error_at bigint
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE relay_target`);
    await queryRunner.query(`DROP INDEX ix_relay_delivery_due`);
    await queryRunner.query(`DROP TABLE relay_delivery`);
  }
}
