import type { ScanKind } from './scan-kind';

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
