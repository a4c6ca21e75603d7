import { CodeTracking, CodeType } from '../../src/codes/code.entity';
import type { CodeRecord } from '../../src/codes/code.wire';
import { CodeProviderKind } from '../../src/images/image.types';

/** A code as it travels to subscribers: table 7 of a page, scanned 3 times. */
export function codeRecordFixture(overrides: Partial<CodeRecord> = {}): CodeRecord {
  return {
    id: '0b3c8f2e-6c1d-4a57-8e9f-1a2b3c4d5e6f',
    pageId: '100000000000000',
    type: CodeType.STANDARD,
    ref: 'table-7',
    label: 'Table 7',
    provider: CodeProviderKind.LOCAL,
    imageSize: 1000,
    imageId: '7d9e0f1a-2b3c-4d5e-8f9a-0b1c2d3e4f5a',
    createdAt: 1_700_000_000_000,
    scanCount: 3,
    lastScannedAt: 1_700_000_500_000,
    tracking: CodeTracking.DIRECT,
    slug: null,
    visitCount: 0,
    ...overrides,
  };
}
