import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Scans keep refs of up to 2,083 characters, as m.me links carry them (codes generated
 * here keep the Messenger Code API's 250). SQLite does not enforce varchar lengths, so
 * only PostgreSQL has columns to widen.
 */
export class LongRefs1764070000000 implements MigrationInterface {
  name = 'LongRefs1764070000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`ALTER TABLE scan ALTER COLUMN ref TYPE varchar(2083)`);
    await queryRunner.query(`ALTER TABLE ref_counter ALTER COLUMN ref TYPE varchar(2083)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    // Refs longer than 250 cannot go back into the old columns.
    await queryRunner.query(`DELETE FROM scan WHERE length(ref) > 250`);
    await queryRunner.query(`DELETE FROM ref_counter WHERE length(ref) > 250`);
    await queryRunner.query(`ALTER TABLE scan ALTER COLUMN ref TYPE varchar(250)`);
    await queryRunner.query(`ALTER TABLE ref_counter ALTER COLUMN ref TYPE varchar(250)`);
  }
}
