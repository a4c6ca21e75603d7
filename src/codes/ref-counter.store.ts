import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database';
import { refKey } from '../db/transformers';

export interface RefCount {
  scanCount: number;
  /** epoch ms of the latest scan; 0 when never scanned */
  lastScannedAt: number;
}

type Placeholder = (n: number) => string;

/**
 * Scan totals live per (page, ref), whether or not a code exists for the ref, so a
 * code generated later starts with the scans already received. Both writers (the
 * scan ingest and code creation) claim the row first, which on PostgreSQL locks it
 * until commit: whichever comes second sees the other's committed values.
 */
export const CLAIM_COUNTER_SQL = (p: Placeholder) =>
  `INSERT INTO ref_counter (page_id, ref, scan_count, last_scanned_at) VALUES (${p(1)}, ${p(2)}, 0, 0)
   ON CONFLICT (page_id, ref) DO UPDATE SET scan_count = ref_counter.scan_count
   RETURNING scan_count, last_scanned_at`;

/** The claim of code creation: the same, and the counter is no longer an orphan's. */
export const CLAIM_CODED_COUNTER_SQL = (p: Placeholder) =>
  `INSERT INTO ref_counter (page_id, ref, scan_count, last_scanned_at, has_code) VALUES (${p(1)}, ${p(2)}, 0, 0, 1)
   ON CONFLICT (page_id, ref) DO UPDATE SET has_code = 1
   RETURNING scan_count, last_scanned_at`;

export const SET_COUNTER_SQL = (p: Placeholder) =>
  `UPDATE ref_counter SET scan_count = ${p(1)}, last_scanned_at = ${p(2)} WHERE page_id = ${p(3)} AND ref = ${p(4)}`;

export const refCountOf = (row: { scan_count: number | string; last_scanned_at: number | string }): RefCount => ({
  scanCount: Number(row.scan_count),
  lastScannedAt: Number(row.last_scanned_at),
});

/** Claims counters inside a TypeORM transaction (code creation). */
export class RefCounterStore {
  constructor(private readonly db: Database) {}

  /** Claims the counter of a code being created (see CLAIM_CODED_COUNTER_SQL). */
  async claim(manager: EntityManager, pageId: string, ref: string | null): Promise<RefCount> {
    const [row] = await manager.query(
      CLAIM_CODED_COUNTER_SQL((n) => this.db.param(n)),
      [pageId, refKey(ref)],
    );
    return refCountOf(row);
  }
}
