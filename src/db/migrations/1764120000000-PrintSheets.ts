import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Print sheets: PDFs stored like code images (permanent URL, strong ETag), with the pages whose codes they show. */
export class PrintSheets1764120000000 implements MigrationInterface {
  name = 'PrintSheets1764120000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    const bytes = queryRunner.connection.driver.options.type === 'postgres' ? 'bytea' : 'blob';
    await queryRunner.query(`
      CREATE TABLE print_sheet (
        id varchar(36) PRIMARY KEY,
        page_ids text NOT NULL,
        page_count integer NOT NULL,
        code_count integer NOT NULL,
        bytes ${bytes} NOT NULL,
        sha256 varchar(64) NOT NULL,
        created_at bigint NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE print_sheet`);
  }
}
