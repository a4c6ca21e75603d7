import { MAX_SCAN_TIME_MS, type IncomingScan } from '../scans/incoming-scan';
import { ScanKind } from '../scans/scan-kind';

export interface ParsedWebhook {
  scans: IncomingScan[];
  /** messaging items that were not scans (messages, deliveries, reads, plain postbacks…) */
  ignored: number;
  /**
   * scans that cannot be stored: no page or sender, no valid timestamp (the item's,
   * else the entry's), an id or ref longer than Messenger's, a NUL character
   */
  malformed: number;
}

export class WebhookPayloadError extends Error {}

const MAX_REF_LENGTH = 250;
const MAX_SOURCE_LENGTH = 64;
const MAX_ID_LENGTH = 64;

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
const idOf = (value: unknown): string | undefined => {
  const id = isObject(value) ? value.id : undefined;
  return typeof id === 'string' && id !== '' ? id : typeof id === 'number' ? String(id) : undefined;
};

/**
 * Reads every entry and every messaging item of a page webhook: a `referral` is a
 * REFERRAL scan, a `postback` carrying `referral` a POSTBACK scan (a person's first
 * time). Everything else is counted as ignored, never an error.
 */
export function parseWebhook(body: unknown): ParsedWebhook {
  if (!isObject(body) || body.object !== 'page' || !Array.isArray(body.entry)) {
    throw new WebhookPayloadError('not a page webhook: expected {"object":"page","entry":[…]}');
  }
  const parsed: ParsedWebhook = { scans: [], ignored: 0, malformed: 0 };
  for (const entry of body.entry) {
    if (!isObject(entry) || !Array.isArray(entry.messaging)) continue;
    for (const item of entry.messaging) {
      const scan = isObject(item) ? scanOf(item, entry) : undefined;
      if (scan === undefined) parsed.ignored++;
      else if (scan === null) parsed.malformed++;
      else parsed.scans.push(scan);
    }
  }
  return parsed;
}

/** undefined: not a scan; null: a scan that cannot be stored. */
function scanOf(item: JsonObject, entry: JsonObject): IncomingScan | null | undefined {
  let referral: unknown;
  let kind: ScanKind;
  if (isObject(item.referral)) {
    referral = item.referral;
    kind = ScanKind.REFERRAL;
  } else if (isObject(item.postback) && isObject(item.postback.referral)) {
    referral = item.postback.referral;
    kind = ScanKind.POSTBACK;
  } else {
    return undefined;
  }
  const { ref, source } = referral as JsonObject;
  const pageId = idOf(item.recipient) ?? idOf(entry);
  const senderPsid = idOf(item.sender);
  const timestamp = typeof item.timestamp === 'number' ? item.timestamp : typeof entry.time === 'number' ? entry.time : NaN;
  if (!pageId || pageId.length > MAX_ID_LENGTH || !senderPsid) return null;
  if (!Number.isFinite(timestamp) || timestamp <= 0 || timestamp > MAX_SCAN_TIME_MS) return null;
  if (ref !== undefined && ref !== null && (typeof ref !== 'string' || ref.length > MAX_REF_LENGTH || ref.includes('\u0000'))) {
    return null;
  }
  return {
    pageId,
    senderPsid,
    kind,
    ref: typeof ref === 'string' && ref !== '' ? ref : null,
    // PostgreSQL text cannot hold NUL; a source is informative, so it is cleaned rather than refused.
    source: typeof source === 'string' && source !== '' ? source.replaceAll('\u0000', '').slice(0, MAX_SOURCE_LENGTH) || null : null,
    occurredAt: new Date(Math.floor(timestamp)),
  };
}
