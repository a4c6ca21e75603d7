import type { MigrationInterface, QueryRunner } from 'typeorm';
import { IngestTail1764600000000 } from './1764600000000-IngestTail';

/**
 * PostgreSQL only: scan_ingest_tail (migration 1764600000000-IngestTail) has had no caller
 * since scan_ingest (1764660000000-IngestOneTrip) took over the end of the ingest transaction
 * with the scans' insert; a function nobody calls is one more thing to keep in step with the
 * tables. Undone, it is created again exactly as it was.
 */
export class DropIngestTail1764670000000 implements MigrationInterface {
  name = 'DropIngestTail1764670000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`DROP FUNCTION IF EXISTS scan_ingest_tail(json, json)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await new IngestTail1764600000000().up(queryRunner);
  }
}
