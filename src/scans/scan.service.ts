import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { CodeService } from '../codes/code.service';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { pageRefKey, refKey, STATIC_REF_KEY } from '../db/transformers';
import { BadUserInputError } from '../errors';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import { emptyListPage, type ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import type { IncomingScan } from './incoming-scan';
import type { PsidHasher } from './psid-hash';
import type { ScanFeed } from './scan-feed';
import { Scan } from './scan.entity';
import type { AlongsideScans, ScanWriter } from './scan.store';

export interface IngestResult {
  /** scans stored by this call */
  stored: number;
  /** scans already stored by an earlier delivery (or twice in this one) */
  duplicates: number;
  /** per scan given, in the same order: its id and whether this call stored it */
  scans: { id: string; stored: boolean }[];
}

export interface ListScansRequest {
  pageId?: string | null;
  codeId?: string | null;
  first?: number | null;
  after?: string | null;
}

/** Newest first: ids begin with the event time (scanIdOf), so id order is time order. */
const SCAN_ORDERING = 'ID_DESC';

export interface ExportScansRequest {
  pageId?: string | null;
  codeId?: string | null;
  /** [from, to) by occurredAt; either may be left out */
  from?: Date | null;
  to?: Date | null;
}

/** A scan as exported: with the id of its code, null for an orphan. */
export interface ExportedScan {
  scan: Scan;
  codeId: string | null;
}

/** What a listing or an export reads of a scan (not the sender's hash). */
const SCAN_COLUMNS = 'id, page_id, ref, kind, source, occurred_at, received_at, stream_seq';

interface ScanRow {
  id: string;
  page_id: string;
  ref: string;
  kind: Scan['kind'];
  source: string | null;
  occurred_at: number | string;
  received_at: number | string;
  stream_seq: number | string;
}

function scanFromRow(row: ScanRow): Scan {
  return Object.assign(new Scan(), {
    id: row.id,
    pageId: row.page_id,
    ref: row.ref === STATIC_REF_KEY ? null : row.ref,
    kind: row.kind,
    source: row.source,
    occurredAt: new Date(Number(row.occurred_at)),
    receivedAt: new Date(Number(row.received_at)),
    streamSeq: Number(row.stream_seq),
  });
}

/** Rows read per query of an export: memory stays this many rows whatever the export's size. */
const EXPORT_BATCH_ROWS = 1000;

/**
 * The smallest id a scan at `instant` (epoch ms) can have: ids begin with the time's 12 hex
 * digits (scanIdOf), so [from, to) of occurredAt is a range of ids, which indexes serve.
 */
export function firstScanIdAt(instant: number): string {
  const time = Math.max(0, instant).toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8)}`;
}

export class ScanService {
  constructor(
    private readonly db: Database,
    private readonly feed: ScanFeed,
    private readonly psids: PsidHasher,
    private readonly writer: ScanWriter,
    private readonly codes: CodeService,
    private readonly metrics: GatewayMetrics,
  ) {}

  /**
   * Stores each scan once and counts it for its (page, ref), then publishes the new
   * ones in the order Messenger sent them. Resolves only after the commit, so the
   * webhook's 200 means durably stored. `alongside` commits in the same transaction
   * (the relay's outbox), also when there is no scan.
   */
  async ingest(_context: RequestContext, incoming: IncomingScan[], alongside?: AlongsideScans): Promise<IngestResult> {
    const started = performance.now();
    const receivedAt = new Date();
    const scans = incoming.map((event) => this.toScan(event, receivedAt));
    const unique = new Map<string, Scan>();
    for (const scan of scans) if (!unique.has(scan.id)) unique.set(scan.id, scan);
    const events = await this.writer.write([...unique.values()], alongside);
    this.feed.publish(events);
    // The first occurrence of a new id is the one stored; a repeat in the same body is a duplicate.
    const newIds = new Set(events.map((event) => event.scan.id));
    const perScan = scans.map((scan) => {
      const stored = newIds.delete(scan.id);
      return { id: scan.id, stored };
    });
    const result = { stored: events.length, duplicates: incoming.length - events.length, scans: perScan };
    this.metrics.scansIngested(result, (performance.now() - started) / 1000);
    return result;
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

  /**
   * The scans of an export, oldest first, in batches read one after the other (a keyset
   * over the id, which begins with the event time). What the request names is checked
   * here, before the first row: FORBIDDEN for a page outside the key's, NOT_FOUND for a
   * code it cannot see, BAD_USER_INPUT for `to` not after `from`.
   */
  async export(context: RequestContext, request: ExportScansRequest): Promise<AsyncIterable<ExportedScan[]>> {
    if (request.from && request.to && request.to.getTime() <= request.from.getTime()) {
      throw new BadUserInputError('to', 'to must be after from');
    }
    let scope = context.access.readScope(request.pageId);
    let ref: string | null | undefined;
    if (request.codeId != null) {
      const code = await this.codes.requireById(context, request.codeId, 'codeId');
      scope = scope.narrowTo(code.pageId);
      ref = code.ref;
    }
    const { from, to } = request;
    // Raw SQL through Database.read (prepared once per shape): an export reads every row
    // once, and the ORM's per-row hydration would be most of its cost.
    const db = this.db;
    const batch = async (after: string | undefined): Promise<Scan[]> => {
      const { values: parameters, bind } = db.parameters();
      // Bound in the order the text reads: SQLite's placeholders are positional.
      const scans = scope.table('scan', bind);
      const conditions: string[] = [];
      if (ref !== undefined) conditions.push(`ref = ${bind(refKey(ref))}`);
      // The id bounds let the index range-scan; occurred_at makes [from, to) exact.
      if (from) conditions.push(`id >= ${bind(firstScanIdAt(from.getTime()))}`, `occurred_at >= ${bind(from.getTime())}`);
      if (to) conditions.push(`id < ${bind(firstScanIdAt(to.getTime()))}`, `occurred_at < ${bind(to.getTime())}`);
      if (after !== undefined) conditions.push(`id > ${bind(after)}`);
      const rows = await db.read<ScanRow>(
        `SELECT ${SCAN_COLUMNS} FROM ${scans}
         ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''} ORDER BY id LIMIT ${bind(EXPORT_BATCH_ROWS)}`,
        parameters,
      );
      return rows.map(scanFromRow);
    };
    const codes = this.codes;
    return {
      async *[Symbol.asyncIterator]() {
        if (scope.empty) return;
        let after: string | undefined;
        for (;;) {
          const scans = await batch(after);
          if (scans.length === 0) return;
          const codeOf = await codes.findByPageRefs(
            scope,
            scans.map((scan) => ({ pageId: scan.pageId, ref: scan.ref })),
          );
          yield scans.map((scan) => ({ scan, codeId: codeOf.get(pageRefKey(scan.pageId, scan.ref))?.id ?? null }));
          if (scans.length < EXPORT_BATCH_ROWS) return;
          after = scans[scans.length - 1].id;
        }
      },
    };
  }

  async list(context: RequestContext, request: ListScansRequest & { ref?: string | null }): Promise<ListPage<Scan>> {
    const first = pageSize(request.first);
    let scope = context.access.readScope(request.pageId);
    let ref: string | null | undefined = request.ref;
    if (request.codeId != null) {
      // A code outside the key's pages is NOT_FOUND, as if it did not exist.
      const code = await this.codes.requireById(context, request.codeId, 'codeId');
      scope = scope.narrowTo(code.pageId);
      ref = code.ref;
    }
    if (scope.empty) return emptyListPage();
    const { values: parameters, bind } = this.db.parameters();
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const scanTable = scope.table('scan', bind);
    const filter: string[] = [];
    if (ref !== undefined) filter.push(`ref = ${bind(refKey(ref))}`);
    const filterParameters = [...parameters];
    const page = [...filter];
    if (request.after != null) {
      const [id] = decodeCursor(request.after, SCAN_ORDERING, ['string']);
      page.push(`id < ${bind(id)}`);
    }
    const where = (conditions: string[]) => (conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '');
    const rows = (
      await this.db.read<ScanRow>(
        `SELECT ${SCAN_COLUMNS} FROM ${scanTable} ${where(page)} ORDER BY id DESC LIMIT ${bind(first + 1)}`,
        parameters,
      )
    ).map(scanFromRow);
    const scans = rows.slice(0, first);
    return {
      items: scans,
      cursors: scans.map((scan) => encodeCursor(SCAN_ORDERING, [scan.id])),
      hasNextPage: rows.length > first,
      totalCount: async () => {
        const [row] = await this.db.read<{ total: number | string }>(
          `SELECT COUNT(*) AS total FROM ${scanTable} ${where(filter)}`,
          filterParameters,
        );
        return Number(row.total);
      },
    };
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
