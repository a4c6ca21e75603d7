import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * PostgreSQL only: the ingest transaction's writes to the scan table in its last round trip,
 * each scan inserted once, already numbered, instead of inserted first and numbered by an
 * UPDATE under the stream's lock (a second version of every scan row and of all its index
 * entries: stream_seq is indexed, so the UPDATE is never HOT). The gateway sends BEGIN, the
 * pending rollup rows, this call and COMMIT as one simple query (src/scans/scan.store.ts):
 * one round trip per ingest transaction.
 *
 * scan_ingest(scans, counters): `counters` as scan_ingest_tail's (migration 1764600000000),
 * claimed in the same lock order, then the stream's row; `scans`, the scan rows to insert in
 * stream order, are inserted numbered after the stream's position, which advances by their
 * number. The gateway has counted them all as new: one stored already (a redelivery
 * committed since the gateway looked) raises SQLSTATE MC001, and the gateway retries the
 * transaction without it. Every inserter of scans holds the stream's row while it inserts,
 * so an insert here never waits for another transaction's uncommitted scan (which would hold
 * the stream's row before this one: no lock cycle).
 *
 * Plans held to index lookups, as scan_ingest_tail's (same reason).
 */
export class IngestOneTrip1764660000000 implements MigrationInterface {
  name = 'IngestOneTrip1764660000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`
      CREATE FUNCTION scan_ingest(scans json, counters json) RETURNS json
      LANGUAGE plpgsql
      SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off
      AS $body$
      DECLARE
        claimed json;
        codes json;
        base bigint;
        expected integer := json_array_length(scans);
        inserted integer;
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

        IF expected > 0 THEN
          UPDATE scan_stream SET position = position + expected WHERE id = 1 RETURNING position - expected INTO base;
          INSERT INTO scan (id, page_id, ref, kind, source, sender_hash, occurred_at, received_at, stream_seq)
          SELECT r.id, r.page_id, r.ref, r.kind, r.source, r.sender_hash, r.occurred_at, r.received_at, base + e.ordinality
            FROM json_array_elements(scans) WITH ORDINALITY AS e, json_populate_record(NULL::scan, e.value) AS r
          ON CONFLICT (id) DO NOTHING;
          GET DIAGNOSTICS inserted = ROW_COUNT;
          IF inserted < expected THEN
            RAISE EXCEPTION 'scan_ingest: % of % scans stored already', expected - inserted, expected USING ERRCODE = 'MC001';
          END IF;
        END IF;

        RETURN json_build_object('counters', claimed, 'codes', codes, 'base', base);
      END
      $body$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    if (queryRunner.connection.driver.options.type !== 'postgres') return;
    await queryRunner.query(`DROP FUNCTION scan_ingest(json, json)`);
  }
}
