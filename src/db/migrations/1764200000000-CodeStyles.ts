import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The style of a styled code (colours, center image and its size), kept with the code so
 * that every image of it (each new size, the SVG) is drawn alike; no row: a plain code. And
 * the SVG of each LOCAL code, one per code (a vector has no size), served like code images.
 * Both go with their code (ON DELETE CASCADE: removePage deletes codes by page).
 */
export class CodeStyles1764200000000 implements MigrationInterface {
  name = 'CodeStyles1764200000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const bytes = queryRunner.connection.driver.options.type === 'postgres' ? 'bytea' : 'blob';
    await queryRunner.query(`
      CREATE TABLE code_style (
        code_id varchar(36) PRIMARY KEY REFERENCES code (id) ON DELETE CASCADE,
        foreground varchar(7) NOT NULL,
        background varchar(7) NOT NULL,
        center_image ${bytes},
        center_image_type varchar(32),
        center_image_sha256 varchar(64),
        center_image_permille integer
      )`);
    await queryRunner.query(`
      CREATE TABLE code_vector (
        id varchar(36) PRIMARY KEY,
        code_id varchar(36) NOT NULL UNIQUE REFERENCES code (id) ON DELETE CASCADE,
        sha256 varchar(64) NOT NULL,
        byte_length integer NOT NULL,
        bytes ${bytes} NOT NULL,
        created_at bigint NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE code_vector`);
    await queryRunner.query(`DROP TABLE code_style`);
  }
}
