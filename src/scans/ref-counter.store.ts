import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database';
import { refKey } from '../db/transformers';

export interface RefCount {
  scanCount: number;
  /** epoch ms of the latest scan; 0 when never scanned */
  lastScannedAt: number;
}

/**
 * Scan totals per (page, ref), kept whether or not a code exists for the ref, so a
 * code generated later starts with the scans already received. Both writers (the
 * scan ingest and code creation) claim the row first, which on PostgreSQL locks it
 * until commit: whichever comes second sees the other's committed values.
 */
export class RefCounterStore {
  constructor(private readonly db: Database) {}

  async claim(manager: EntityManager, pageId: string, ref: string | null): Promise<RefCount> {
    const p = (n: number) => this.db.param(n);
    const rows: { scan_count: number | string; last_scanned_at: number | string }[] = await manager.query(
      `INSERT INTO ref_counter (page_id, ref, scan_count, last_scanned_at) VALUES (${p(1)}, ${p(2)}, 0, 0)
       ON CONFLICT (page_id, ref) DO UPDATE SET scan_count = ref_counter.scan_count
       RETURNING scan_count, last_scanned_at`,
      [pageId, refKey(ref)],
    );
    return { scanCount: Number(rows[0].scan_count), lastScannedAt: Number(rows[0].last_scanned_at) };
  }

  async set(manager: EntityManager, pageId: string, ref: string | null, count: RefCount): Promise<void> {
    const p = (n: number) => this.db.param(n);
    await manager.query(`UPDATE ref_counter SET scan_count = ${p(1)}, last_scanned_at = ${p(2)} WHERE page_id = ${p(3)} AND ref = ${p(4)}`, [
      count.scanCount,
      count.lastScannedAt,
      pageId,
      refKey(ref),
    ]);
  }
}
