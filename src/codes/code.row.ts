import { epochMillis, epochMillisOrNever, nullableRef } from '../db/transformers';
import { Code } from './code.entity';

/** The code table's columns, in the order of CodeRow, for hand-written hot-path queries. */
export const CODE_COLUMNS =
  'id, page_id, type, ref, label, provider, image_size, image_id, created_at, scan_count, last_scanned_at';

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
}

/** The entity's own transformers, without the ORM's per-row cost. */
export function codeFromRow(row: CodeRow): Code {
  return Object.assign(new Code(), {
    id: row.id,
    pageId: row.page_id,
    type: row.type as Code['type'],
    ref: nullableRef.from(row.ref) as string | null,
    label: row.label,
    provider: row.provider as Code['provider'],
    imageSize: Number(row.image_size),
    imageId: row.image_id,
    createdAt: epochMillis.from(row.created_at) as Date,
    scanCount: Number(row.scan_count),
    lastScannedAt: epochMillisOrNever.from(row.last_scanned_at) as Date | null,
  });
}
