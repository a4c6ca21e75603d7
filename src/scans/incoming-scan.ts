import type { ScanKind } from './scan-kind';

/**
 * The latest event time a scan can have (0xffffffffffff ms, in the year 10889): scan ids
 * begin with the time as 12 hex digits (scanIdOf), which is what makes them sort by time.
 */
export const MAX_SCAN_TIME_MS = 0xffff_ffff_ffff;

/** A scan as the webhook reports it, before it is stored. Holds the PSID: never log it. */
export interface IncomingScan {
  pageId: string;
  senderPsid: string;
  kind: ScanKind;
  /** null for the page's static code (no ref in the event) */
  ref: string | null;
  source: string | null;
  occurredAt: Date;
}
