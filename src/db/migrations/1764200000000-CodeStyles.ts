import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The style of a styled code (colours, center image and its size), kept with the code so
 * that every image of it (each new size, the SVG) is drawn alike. No row: a plain code.
 * Deleted with its code (removePage deletes codes by page). A code's SVG is stored as one
 * more code_image row, of size 0 (a vector has no pixel size; raster sizes are 100 to
 * 2000), so UNIQUE (code_id, size) keeps it one per code without a change to that table.
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
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE code_style`);
  }
}
