import { randomInt } from 'node:crypto';
import type { IncomingScan } from '../../src/scans/incoming-scan';
import { ScanKind } from '../../src/scans/scan.entity';
import { TEST_PAGE_ID } from './gateway';

let timestamp = Date.UTC(2026, 10, 1);

/**
 * A scan as the webhook hands it to ScanService.ingest: the test page, a new person, each one
 * second after the one before (so that no two are the same event).
 */
export function incomingScan(ref: string | null): IncomingScan {
  return {
    pageId: TEST_PAGE_ID,
    senderPsid: `psid-${randomInt(1_000_000_000)}`,
    kind: ScanKind.REFERRAL,
    ref,
    source: 'MESSENGER_CODE',
    occurredAt: new Date((timestamp += 1000)),
  };
}
