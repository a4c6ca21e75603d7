import { createHash } from 'node:crypto';
import { Scan } from '../../src/scans/scan.entity';
import type { ScanKind } from '../../src/scans/scan-kind';

/** What the rollup tests scan: two pages, a static code among the refs, scans with and without a source. */
export const START = Date.parse('2026-03-27T00:00:00Z');
export const PAGES = ['7000000000001', '7000000000002'];
export const REFS = ['menu', 'table-1', 'flyer', null];
export const SOURCES = ['SHORTLINK', 'MESSENGER_CODE', null];

let serial = 0;

/** A scan at `occurredAt` of `person` (hashed as ingest does), its id unique and in time order like scanIdOf's. */
export function scanAt(
  occurredAt: number,
  pageId: string,
  ref: string | null,
  source: string | null,
  person: number,
  kind: ScanKind,
): Scan {
  serial += 1;
  const time = occurredAt.toString(16).padStart(12, '0');
  return Object.assign(new Scan(), {
    id: `${time.slice(0, 8)}-${time.slice(8)}-8000-0000-${serial.toString(16).padStart(12, '0')}`,
    pageId,
    ref,
    kind,
    source,
    senderHash: createHash('sha256').update(`person-${person}`).digest('hex'),
    occurredAt: new Date(occurredAt),
    receivedAt: new Date(occurredAt + 40),
  });
}
