import type { Database } from '../db/database';
import type { Logger } from '../logging/logger';

/** How often counted visits are written. */
const FLUSH_INTERVAL_MS = 1_000;

/**
 * Counts GETs of REDIRECT links. A redirect answers at once and its visit is written with
 * the others of the same second, in one transaction: the code's visit_count and the
 * visits of the code at that millisecond (what the statistics read). A crash loses at most
 * the last second of visits; a stop writes them. Only counts are stored: nothing about the person.
 */
export class VisitCounter {
  /** code id → epoch millisecond → visits not yet written */
  private pending = new Map<string, Map<number, number>>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
  ) {
    this.timer = setInterval(() => void this.flush(), FLUSH_INTERVAL_MS);
    this.timer.unref();
  }

  record(codeId: string, at = Date.now()): void {
    this.add(codeId, at, 1);
  }

  /** Writes what was counted so far; one flush at a time. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const p = (n: number) => this.db.param(n);
    try {
      await this.db.transaction(async (manager) => {
        for (const [codeId, instants] of batch) {
          let total = 0;
          for (const [at, visits] of instants) {
            total += visits;
            // Only for a code that still exists (its page may have been removed meanwhile).
            // page-scope exempt: counts a visit of the code its slug (the capability) named; answers nothing.
            await manager.query(
              `INSERT INTO code_visit (code_id, at, visits)
               SELECT ${p(1)}, ${p(2)}, ${p(3)} WHERE EXISTS (SELECT 1 FROM code WHERE id = ${p(4)})
               ON CONFLICT (code_id, at) DO UPDATE SET visits = code_visit.visits + excluded.visits`,
              [codeId, at, visits, codeId],
            );
          }
          await manager.query(`UPDATE code SET visit_count = visit_count + ${p(1)} WHERE id = ${p(2)}`, [total, codeId]);
        }
      });
    } catch (error) {
      // Kept for the next flush: the database may be back by then.
      for (const [codeId, instants] of batch) for (const [at, visits] of instants) this.add(codeId, at, visits);
      this.logger.warn({ error: (error as Error).message, codes: batch.size }, 'redirect visits not written yet; retrying');
    }
  }

  private add(codeId: string, at: number, visits: number): void {
    let instants = this.pending.get(codeId);
    if (!instants) {
      instants = new Map();
      this.pending.set(codeId, instants);
    }
    instants.set(at, (instants.get(at) ?? 0) + visits);
  }

  /** Stops counting on a timer and writes what is left. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
