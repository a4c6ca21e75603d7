import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * PostgreSQL only: the end of the ingest transaction as one function, so that the rows every
 * ingest transaction of every instance writes (the (page, ref) counters, the codes' copies of
 * them, the stream's single row) are locked for one round trip and the commit, rather than
 * for a statement round trip each while the gateway computes the next. The gateway sends the
 * call and its COMMIT together (src/scans/scan.store.ts), so those locks are held only while
 * PostgreSQL runs it.
 *
 * `counters`: [{"page_id", "ref", "scans", "last"}, ...] in the lock order (every caller sorts
 * them the same way): each counter is created at zero when absent and locked in that order,
 * its value before this transaction is returned, then `scans` is added and `last` (epoch ms)
 * kept when later. Each code of those (page, ref) gets the new values and is returned whole
 * (null where there is no code). Both arrays answer in the order of `counters`: matched by
 * position, not by text, whatever PostgreSQL made of a ref's characters.
 * `scan_ids`: the scans this transaction inserted, in stream order: the stream advances by
 * their number and they are numbered after its previous position.
 *
 * Its rows are always a few per group, found by primary key in tables of any size: the plans
 * are held to index lookups (nested loops over the group's JSON), whatever the statistics say.
 * A table never analysed yet (a new database) otherwise gets a hash join over a scan of the
 * whole scan table, at every call of the session (plpgsql keeps the plan), under the locks
 * every writer waits for.
 *
 * SQLite has one writer at a time; its gateway runs the same steps as prepared statements.
 */
export class IngestTail1764600000000 implements MigrationInterface {
  name = 'IngestTail1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`
      CREATE FUNCTION scan_ingest_tail(counters json, scan_ids json) RETURNS json
      LANGUAGE plpgsql
      SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
      AS $body$
      DECLARE
        claimed json;
        codes json;
        base bigint;
        scans integer := json_array_length(scan_ids);
      BEGIN
        WITH wanted AS (
          SELECT e.value ->> 'page_id' AS page_id, e.value ->> 'ref' AS ref, e.ordinality
            FROM json_array_elements(counters) WITH ORDINALITY AS e
        ), locked AS (
          INSERT INTO ref_counter (page_id, ref, scan_count, last_scanned_at)
          SELECT page_id, ref, 0, 0 FROM wanted ORDER BY ordinality
          ON CONFLICT (page_id, ref) DO UPDATE SET scan_count = ref_counter.scan_count
          RETURNING page_id, ref, scan_count, last_scanned_at
        )
        SELECT COALESCE(json_agg(locked ORDER BY wanted.ordinality), '[]') INTO claimed
          FROM wanted JOIN locked ON locked.page_id = wanted.page_id AND locked.ref = wanted.ref;

        UPDATE ref_counter
           SET scan_count = ref_counter.scan_count + (e.value ->> 'scans')::integer,
               last_scanned_at = GREATEST(ref_counter.last_scanned_at, (e.value ->> 'last')::bigint)
          FROM json_array_elements(counters) AS e
         WHERE ref_counter.page_id = e.value ->> 'page_id' AND ref_counter.ref = e.value ->> 'ref';

        WITH counted AS (
          UPDATE code SET scan_count = ref_counter.scan_count, last_scanned_at = ref_counter.last_scanned_at
            FROM json_array_elements(counters) AS e, ref_counter
           WHERE ref_counter.page_id = e.value ->> 'page_id' AND ref_counter.ref = e.value ->> 'ref'
             AND code.page_id = ref_counter.page_id AND code.ref = ref_counter.ref
          RETURNING code.*
        )
        SELECT COALESCE(json_agg(counted ORDER BY e.ordinality), '[]') INTO codes
          FROM json_array_elements(counters) WITH ORDINALITY AS e
          LEFT JOIN counted ON counted.page_id = e.value ->> 'page_id' AND counted.ref = e.value ->> 'ref';

        IF scans > 0 THEN
          UPDATE scan_stream SET position = position + scans WHERE id = 1 RETURNING position - scans INTO base;
          UPDATE scan SET stream_seq = base + numbered.ordinality
            FROM json_array_elements_text(scan_ids) WITH ORDINALITY AS numbered
           WHERE scan.id = numbered.value;
        END IF;

        RETURN json_build_object('counters', claimed, 'codes', codes, 'base', base);
      END
      $body$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`DROP FUNCTION scan_ingest_tail(json, json)`);
  }
}
