import { epochMillisOrNever, nullableRef } from '../db/transformers';
import type { CodeProviderKind } from '../images/image.types';
import { Code, type CodeTracking, type CodeType } from './code.entity';

/**
 * A code as plain JSON, instants as epoch milliseconds: the one shape in which a code
 * leaves the database on hot paths and travels to subscribers (in this process or
 * through Redis). Rows become records, records become Code entities; nothing else
 * maps a code by hand.
 */
export interface CodeRecord {
  id: string;
  pageId: string;
  type: CodeType;
  ref: string | null;
  label: string | null;
  provider: CodeProviderKind;
  imageSize: number;
  imageId: string;
  createdAt: number;
  scanCount: number;
  /** null when never scanned */
  lastScannedAt: number | null;
  tracking: CodeTracking;
  /** null for DIRECT codes */
  slug: string | null;
  visitCount: number;
}

/** The code table's columns, in the order of CodeRow, for hand-written hot-path queries. */
export const CODE_COLUMNS =
  'id, page_id, type, ref, label, provider, image_size, image_id, created_at, scan_count, last_scanned_at, tracking, slug, visit_count';

/** A code row as the drivers return it (PostgreSQL returns bigint as a string). */
export interface CodeRow {
  id: string;
  page_id: string;
  type: string;
  ref: string;
  label: string | null;
  provider: string;
  image_size: number | string;
  image_id: string;
  created_at: number | string;
  scan_count: number | string;
  last_scanned_at: number | string;
  tracking: string;
  slug: string | null;
  visit_count: number | string;
}

/** The entity's own transformers decide what a stored ref and a stored "never" mean. */
export function codeRecordFromRow(row: CodeRow): CodeRecord {
  const lastScannedAt = epochMillisOrNever.from(row.last_scanned_at) as Date | null;
  return {
    id: row.id,
    pageId: row.page_id,
    type: row.type as CodeType,
    ref: nullableRef.from(row.ref) as string | null,
    label: row.label,
    provider: row.provider as CodeProviderKind,
    imageSize: Number(row.image_size),
    imageId: row.image_id,
    createdAt: Number(row.created_at),
    scanCount: Number(row.scan_count),
    lastScannedAt: lastScannedAt === null ? null : lastScannedAt.getTime(),
    tracking: row.tracking as CodeTracking,
    slug: row.slug,
    visitCount: Number(row.visit_count),
  };
}

export function codeFromRecord(record: CodeRecord): Code {
  return Object.assign(new Code(), {
    ...record,
    createdAt: new Date(record.createdAt),
    lastScannedAt: record.lastScannedAt === null ? null : new Date(record.lastScannedAt),
  });
}

/** Without the ORM's per-row cost. */
export function codeFromRow(row: CodeRow): Code {
  return codeFromRecord(codeRecordFromRow(row));
}
