import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * REDIRECT codes: a code's tracking, the slug of its redirect link (unique, null for
 * DIRECT codes) and its visit count; and visits per code and millisecond, which the
 * statistics read (a visit belongs to [from, to) by the time of its GET). Nothing about
 * the person is stored, only counts.
 */
export class Tracking1764110000000 implements MigrationInterface {
  name = 'Tracking1764110000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE code ADD COLUMN tracking varchar(16) NOT NULL DEFAULT 'DIRECT'`);
    await queryRunner.query(`ALTER TABLE code ADD COLUMN slug varchar(32)`);
    await queryRunner.query(`ALTER TABLE code ADD COLUMN visit_count integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`CREATE UNIQUE INDEX ux_code_slug ON code (slug)`);
    await queryRunner.query(`
      CREATE TABLE code_visit (
        code_id varchar(36) NOT NULL,
        at bigint NOT NULL,
        visits integer NOT NULL,
        PRIMARY KEY (code_id, at)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE code_visit`);
    await queryRunner.query(`DROP INDEX ux_code_slug`);
    await queryRunner.query(`ALTER TABLE code DROP COLUMN visit_count`);
    await queryRunner.query(`ALTER TABLE code DROP COLUMN slug`);
    await queryRunner.query(`ALTER TABLE code DROP COLUMN tracking`);
  }
}
