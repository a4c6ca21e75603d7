import { createHash } from 'node:crypto';
import { Code } from '../codes/code.entity';
import type { CodeService } from '../codes/code.service';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { pageRefKey, refKey } from '../db/transformers';
import { emptyListPage, type ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import type { ScanEvent, ScanFeed } from '../pubsub';
import type { IncomingScan } from '../webhook/webhook-payload';
import type { PsidHasher } from './psid-hash';
import { Scan } from './scan.entity';
import type { ScanWriter } from './scan.store';

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

/** Newest first: ids begin with the event time (scanIdOf), so id order is time order. */
const SCAN_ORDERING = 'ID_DESC';

export class ScanService {
  constructor(
    private readonly db: Database,
    private readonly feed: ScanFeed,
    private readonly psids: PsidHasher,
    private readonly writer: ScanWriter,
    private readonly codes: CodeService,
  ) {}

  /**
   * Stores each scan once and counts it for its (page, ref), then publishes the new
   * ones in the order Messenger sent them. Resolves only after the commit, so the
   * webhook's 200 means durably stored.
   */
  async ingest(_context: RequestContext, incoming: IncomingScan[]): Promise<IngestResult> {
    const receivedAt = new Date();
    const unique = new Map<string, Scan>();
    for (const event of incoming) {
      const scan = this.toScan(event, receivedAt);
      if (!unique.has(scan.id)) unique.set(scan.id, scan);
    }
    const events = await this.writer.write([...unique.values()]);
    this.feed.publish(events);
    return { stored: events.length, duplicates: incoming.length - events.length };
  }

  private toScan(event: IncomingScan, receivedAt: Date): Scan {
    const senderHash = this.psids.hash(event.senderPsid);
    return Object.assign(new Scan(), {
      id: scanIdOf(event, senderHash),
      pageId: event.pageId,
      ref: event.ref,
      kind: event.kind,
      source: event.source,
      senderHash,
      occurredAt: event.occurredAt,
      receivedAt,
    });
  }

  async list(context: RequestContext, request: ListScansRequest & { ref?: string | null }): Promise<ListPage<Scan>> {
    const first = pageSize(request.first);
    let pageId = request.pageId;
    let ref: string | null | undefined = request.ref;
    if (request.codeId != null) {
      const code = await this.codes.requireById(context, request.codeId, 'codeId');
      if (pageId != null && pageId !== code.pageId) return emptyListPage();
      pageId = code.pageId;
      ref = code.ref;
    }
    const filtered = () => {
      const query = this.db.manager.createQueryBuilder(Scan, 'scan');
      if (pageId != null) query.andWhere('scan.pageId = :pageId', { pageId });
      if (ref !== undefined) query.andWhere('scan.ref = :ref', { ref: refKey(ref) });
      return query;
    };
    const query = filtered();
    if (request.after != null) {
      const [id] = decodeCursor(request.after, SCAN_ORDERING, ['string']);
      query.andWhere('scan.id < :id', { id });
    }
    const rows = await query.orderBy('scan.id', 'DESC').limit(first + 1).getMany();
    const scans = rows.slice(0, first);
    return {
      items: scans,
      cursors: scans.map((scan) => encodeCursor(SCAN_ORDERING, [scan.id])),
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
}

/**
 * The id of a Messenger event: what Meta's redeliveries have in common (page,
 * person, timestamp, kind, ref), hashed, behind the event time as 12 hex digits, so
 * that ids sort by event time (listings rely on it). Shaped like a UUID (version 8, "custom").
 */
export function scanIdOf(event: IncomingScan, senderHash: string): string {
  const time = event.occurredAt.getTime().toString(16).padStart(12, '0');
  const identity = createHash('sha256')
    .update([event.pageId, senderHash, event.occurredAt.getTime(), event.kind, refKey(event.ref)].join('\u0000'))
    .digest('hex');
  return `${time.slice(0, 8)}-${time.slice(8)}-8${identity.slice(0, 3)}-${identity.slice(3, 7)}-${identity.slice(7, 19)}`;
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
