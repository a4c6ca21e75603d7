import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { Code } from '../codes/code.entity';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { refKey, STATIC_REF_KEY } from '../db/transformers';
import { NotFoundError } from '../errors';
import { emptyListPage, type ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import type { ScanEvent, ScanFeed } from '../pubsub';
import type { IncomingScan } from '../webhook/webhook-payload';
import type { PsidHasher } from './psid-hash';
import type { RefCounterStore } from './ref-counter.store';
import { Scan } from './scan.entity';

export interface IngestResult {
  /** scans stored by this call */
  stored: number;
  /** scans already stored by an earlier delivery (or twice in this one) */
  duplicates: number;
}

export interface ListScansRequest {
  pageId?: string | null;
  codeId?: string | null;
  first?: number | null;
  after?: string | null;
}

const SCAN_ORDERING = 'OCCURRED_AT_DESC';

interface ScanRow {
  scan: Scan;
  /** position in the request, to publish in Messenger's order */
  position: number;
}

const pageRefKey = (pageId: string, ref: string | null) => `${pageId}\u0000${refKey(ref)}`;

export class ScanService {
  constructor(
    private readonly db: Database,
    private readonly feed: ScanFeed,
    private readonly psids: PsidHasher,
    private readonly counters: RefCounterStore,
  ) {}

  /**
   * Stores each scan once and counts it for its (page, ref), all in one transaction,
   * then publishes the new ones. Resolves only after the commit, so the webhook's
   * 200 means durably stored.
   */
  async ingest(_context: RequestContext, incoming: IncomingScan[]): Promise<IngestResult> {
    const receivedAt = new Date();
    const unique = new Map<string, ScanRow>();
    incoming.forEach((event, position) => {
      const scan = this.toScan(event, receivedAt);
      if (!unique.has(scan.eventKey)) unique.set(scan.eventKey, { scan, position });
    });
    // One order for every transaction's locks (unique index, counters), so two
    // concurrent deliveries never wait on each other in a cycle.
    const rows = [...unique.values()].sort((a, b) => (a.scan.eventKey < b.scan.eventKey ? -1 : 1));

    const events = await this.db.transaction(async (manager) => {
      const inserted: ScanRow[] = [];
      for (const row of rows) {
        if (await this.insertScan(manager, row.scan)) inserted.push(row);
      }
      return this.count(manager, inserted);
    });
    this.feed.publish(events);
    return { stored: events.length, duplicates: incoming.length - events.length };
  }

  private toScan(event: IncomingScan, receivedAt: Date): Scan {
    const senderHash = this.psids.hash(event.senderPsid);
    const occurredAt = event.occurredAt.getTime();
    const eventKey = createHash('sha256')
      .update([event.pageId, senderHash, occurredAt, event.kind, refKey(event.ref)].join('\u0000'))
      .digest('hex');
    return Object.assign(new Scan(), {
      id: randomUUID(),
      pageId: event.pageId,
      ref: event.ref,
      kind: event.kind,
      source: event.source,
      senderHash,
      occurredAt: event.occurredAt,
      receivedAt,
      eventKey,
    });
  }

  private async insertScan(manager: EntityManager, scan: Scan): Promise<boolean> {
    const p = (n: number) => this.db.param(n);
    const returned: unknown[] = await manager.query(
      `INSERT INTO scan (id, page_id, ref, kind, source, sender_hash, occurred_at, received_at, event_key)
       VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)})
       ON CONFLICT (event_key) DO NOTHING RETURNING id`,
      [
        scan.id,
        scan.pageId,
        refKey(scan.ref),
        scan.kind,
        scan.source,
        scan.senderHash,
        scan.occurredAt.getTime(),
        scan.receivedAt.getTime(),
        scan.eventKey,
      ],
    );
    return returned.length === 1;
  }

  /**
   * Adds the new scans to their (page, ref) counters and copies the totals onto the
   * codes, then builds one event per scan carrying the code as it was right after
   * that scan (running count), so clients applying events in order stay exact.
   */
  private async count(manager: EntityManager, inserted: ScanRow[]): Promise<ScanEvent[]> {
    const groups = new Map<string, ScanRow[]>();
    for (const row of inserted) {
      const key = pageRefKey(row.scan.pageId, row.scan.ref);
      groups.set(key, [...(groups.get(key) ?? []), row]);
    }
    const events: { position: number; event: ScanEvent }[] = [];
    for (const key of [...groups.keys()].sort()) {
      const group = (groups.get(key) as ScanRow[]).sort((a, b) => a.position - b.position);
      const { pageId, ref } = group[0].scan;
      const before = await this.counters.claim(manager, pageId, ref);
      // Running values: what the code showed right after each scan of the group.
      let running = before;
      const after = group.map((row) => {
        running = {
          scanCount: running.scanCount + 1,
          lastScannedAt: Math.max(running.lastScannedAt, row.scan.occurredAt.getTime()),
        };
        return running;
      });
      await this.counters.set(manager, pageId, ref, running);
      await manager.update(Code, { pageId, ref: refKey(ref) }, {
        scanCount: running.scanCount,
        lastScannedAt: new Date(running.lastScannedAt),
      });
      const code = await manager.findOneBy(Code, { pageId, ref: refKey(ref) });
      group.forEach((row, index) => {
        const snapshot = code && { ...code, scanCount: after[index].scanCount, lastScannedAt: new Date(after[index].lastScannedAt) };
        events.push({ position: row.position, event: toScanEvent(row.scan, snapshot) });
      });
    }
    return events.sort((a, b) => a.position - b.position).map(({ event }) => event);
  }

  async list(_context: RequestContext, request: ListScansRequest & { ref?: string | null }): Promise<ListPage<Scan>> {
    const first = pageSize(request.first);
    let pageId = request.pageId;
    let ref: string | null | undefined = request.ref;
    if (request.codeId != null) {
      const code = await this.db.manager.findOneBy(Code, { id: request.codeId });
      if (!code) throw new NotFoundError('codeId', `Unknown code "${request.codeId}".`);
      if (pageId != null && pageId !== code.pageId) return emptyListPage();
      pageId = code.pageId;
      ref = code.ref ?? STATIC_REF_KEY;
    }
    const filtered = () => {
      const query = this.db.manager.createQueryBuilder(Scan, 'scan');
      if (pageId != null) query.andWhere('scan.pageId = :pageId', { pageId });
      if (ref !== undefined) query.andWhere('scan.ref = :ref', { ref: refKey(ref) });
      return query;
    };
    const query = filtered();
    if (request.after != null) {
      const [occurredAt, id] = decodeCursor(request.after, SCAN_ORDERING, ['number', 'string']);
      query.andWhere('(scan.occurredAt, scan.id) < (:occurredAt, :id)', { occurredAt, id });
    }
    const rows = await query.orderBy('scan.occurredAt', 'DESC').addOrderBy('scan.id', 'DESC').limit(first + 1).getMany();
    const scans = rows.slice(0, first);
    return {
      items: scans,
      cursors: scans.map((scan) => encodeCursor(SCAN_ORDERING, [scan.occurredAt.getTime(), scan.id])),
      hasNextPage: rows.length > first,
      totalCount: () => filtered().getCount(),
    };
  }

  /** The codes of many (page, ref) pairs in one query: Scan.code without N+1. */
  async codesFor(keys: { pageId: string; ref: string | null }[]): Promise<Map<string, Code>> {
    const distinct = new Map(keys.map((key) => [pageRefKey(key.pageId, key.ref), key]));
    if (distinct.size === 0) return new Map();
    const query = this.db.manager.createQueryBuilder(Code, 'code');
    [...distinct.values()].forEach((key, index) => {
      query.orWhere(`(code.pageId = :page${index} AND code.ref = :ref${index})`, {
        [`page${index}`]: key.pageId,
        [`ref${index}`]: refKey(key.ref),
      });
    });
    const codes = await query.getMany();
    return new Map(codes.map((code) => [pageRefKey(code.pageId, code.ref), code]));
  }

  codeKey(scan: Pick<Scan, 'pageId' | 'ref'>): string {
    return pageRefKey(scan.pageId, scan.ref);
  }
}

export function toScanEvent(scan: Scan, code: Code | null): ScanEvent {
  return {
    scan: {
      id: scan.id,
      pageId: scan.pageId,
      ref: scan.ref,
      kind: scan.kind,
      source: scan.source,
      occurredAt: scan.occurredAt.getTime(),
      receivedAt: scan.receivedAt.getTime(),
    },
    code: code && {
      id: code.id,
      pageId: code.pageId,
      type: code.type,
      ref: code.ref,
      label: code.label,
      provider: code.provider,
      imageSize: code.imageSize,
      imageId: code.imageId,
      createdAt: code.createdAt.getTime(),
      scanCount: code.scanCount,
      lastScannedAt: code.lastScannedAt?.getTime() ?? null,
    },
  };
}

/** The Scan (with the code as it was after it) that a `scanned` subscriber resolves. */
export function scanFromEvent(event: ScanEvent): Scan {
  const { scan, code } = event;
  return Object.assign(new Scan(), {
    ...scan,
    kind: scan.kind as Scan['kind'],
    occurredAt: new Date(scan.occurredAt),
    receivedAt: new Date(scan.receivedAt),
    codeAfterScan:
      code &&
      Object.assign(new Code(), {
        ...code,
        type: code.type as Code['type'],
        provider: code.provider as Code['provider'],
        createdAt: new Date(code.createdAt),
        lastScannedAt: code.lastScannedAt === null ? null : new Date(code.lastScannedAt),
      }),
  });
}
