import { MAX_SCAN_TIME_MS, type IncomingScan } from '../scans/incoming-scan';
import { ScanKind } from '../scans/scan-kind';

/** Why a scan in a webhook cannot be stored; logged and counted, never the item itself. */
export type MalformedReason =
  'no page id' | 'invalid page id' | 'no sender' | 'no timestamp' | 'timestamp out of range' | 'ref not a string' | 'ref too long';

export interface ParsedWebhook {
  scans: IncomingScan[];
  /** messaging items that were not scans (messages, deliveries, reads, plain postbacks…) */
  ignored: number;
  /** scans that cannot be stored, by reason */
  malformed: number;
  malformedReasons: Partial<Record<MalformedReason, number>>;
  /** the page (`id`) of each element of `entry`, in order; undefined where it names none (the relay routes by it) */
  entryPageIds: (string | undefined)[];
}

export class WebhookPayloadError extends Error {}

/** Meta's documentation allows m.me refs of up to 2,083 characters. */
export const MAX_REF_LENGTH = 2083;
/**
 * The most bytes a stored ref may take: (page_id, ref, id) must fit one PostgreSQL
 * index entry (about 2,700 bytes). A ref that came through an m.me link of 2,083
 * characters, percent-encoded, never decodes to more.
 */
export const MAX_REF_BYTES = 2400;
const MAX_SOURCE_LENGTH = 64;
const MAX_ID_LENGTH = 64;
/** Meta's timestamps are milliseconds; a value below this (3 March 1973 in ms) is in seconds. */
const SECONDS_BELOW = 1e11;
/** A JSON number of 16 or more digits may exceed 2^53 and lose digits in JSON.parse. */
const LONG_NUMBER = /[:[,]\s*-?\d{16}/;

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);
/** Ids are strings; a JSON number is taken digit for digit (see parseWebhookBody). */
const idOf = (value: unknown): string | undefined => {
  const id = isObject(value) ? value.id : undefined;
  return typeof id === 'string' && id !== '' ? id : typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : undefined;
};

/**
 * The JSON text with every integer token too large for a double quoted, so that JSON.parse
 * keeps its digits (as a string): ids, and 1234567890123456789 ≠ …788. Strings are skipped
 * whole; a token in the place of an object key (followed by ':') is left as it is, so text
 * that is not JSON stays not JSON. Only a body with a long number token takes this path.
 */
function quoteLongIntegers(text: string): string {
  let quoted = '';
  let copied = 0;
  let at = 0;
  while (at < text.length) {
    const code = text.charCodeAt(at);
    if (code === 0x22) {
      // A string, to its closing quote (an escape covers the character after it).
      at += 1;
      while (at < text.length && text.charCodeAt(at) !== 0x22) at += text.charCodeAt(at) === 0x5c ? 2 : 1;
      at += 1;
    } else if (code === 0x2d || (code >= 0x30 && code <= 0x39)) {
      const start = at;
      at += 1;
      while (at < text.length && /[\d.eE+-]/.test(text[at])) at += 1;
      const token = text.slice(start, at);
      let after = at;
      while (after < text.length && /\s/.test(text[after])) after += 1;
      if (/^-?[1-9]\d{15,}$/.test(token) && !Number.isSafeInteger(Number(token)) && text[after] !== ':') {
        quoted += `${text.slice(copied, start)}"${token}"`;
        copied = at;
      }
    } else {
      at += 1;
    }
  }
  return quoted + text.slice(copied);
}

/**
 * The raw body of a signed webhook, parsed. JSON.parse rounds integers beyond 2^53, so in a
 * body with a long number token those are quoted first (rare: Meta sends ids as strings).
 * One parser for every body: what JSON.parse accepts (duplicate keys, deep nesting) is
 * accepted with long numbers too.
 */
export function parseWebhookBody(raw: Buffer): ParsedWebhook {
  const text = raw.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(LONG_NUMBER.test(text) ? quoteLongIntegers(text) : text);
  } catch {
    throw new WebhookPayloadError('body is not JSON');
  }
  return parseWebhook(body);
}

/**
 * Reads every entry and every item of a page webhook, in `messaging` and in `standby`
 * (what an app that does not own the thread receives): a `referral` (on the item or on
 * its `message`) is a REFERRAL scan, a `postback` carrying `referral` a POSTBACK scan (a
 * person's first time). Everything else is counted as ignored, never an error.
 */
export function parseWebhook(body: unknown): ParsedWebhook {
  if (!isObject(body) || body.object !== 'page' || !Array.isArray(body.entry)) {
    throw new WebhookPayloadError('not a page webhook: expected {"object":"page","entry":[…]}');
  }
  const parsed: ParsedWebhook = { scans: [], ignored: 0, malformed: 0, malformedReasons: {}, entryPageIds: [] };
  for (const entry of body.entry) {
    parsed.entryPageIds.push(idOf(entry));
    if (!isObject(entry)) continue;
    for (const items of [entry.messaging, entry.standby]) {
      if (!Array.isArray(items)) continue;
      for (const item of items) {
        const scan = isObject(item) ? scanOf(item, entry) : undefined;
        if (scan === undefined) {
          parsed.ignored++;
        } else if (typeof scan === 'string') {
          parsed.malformed++;
          parsed.malformedReasons[scan] = (parsed.malformedReasons[scan] ?? 0) + 1;
        } else {
          parsed.scans.push(scan);
        }
      }
    }
  }
  return parsed;
}

function referralOf(item: JsonObject): { referral: JsonObject; kind: ScanKind } | undefined {
  if (isObject(item.referral)) return { referral: item.referral, kind: ScanKind.REFERRAL };
  if (isObject(item.postback) && isObject(item.postback.referral)) return { referral: item.postback.referral, kind: ScanKind.POSTBACK };
  if (isObject(item.message) && isObject(item.message.referral)) return { referral: item.message.referral, kind: ScanKind.REFERRAL };
  return undefined;
}

/** A number, or the digits of an integer too long for one (parseWebhookBody keeps those as strings). */
function numberOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  return typeof value === 'string' && /^-?\d{16,}$/.test(value) ? Number(value) : undefined;
}

function timestampOf(item: JsonObject, entry: JsonObject): number | undefined {
  const raw = numberOf(item.timestamp) ?? numberOf(entry.time);
  if (raw === undefined || !Number.isFinite(raw)) return undefined;
  return raw > 0 && raw < SECONDS_BELOW ? raw * 1000 : raw;
}

/** undefined: not a scan; a reason: a scan that cannot be stored. */
function scanOf(item: JsonObject, entry: JsonObject): IncomingScan | MalformedReason | undefined {
  const found = referralOf(item);
  if (!found) return undefined;
  const { ref, source } = found.referral;
  const pageId = idOf(item.recipient) ?? idOf(entry);
  const senderPsid = idOf(item.sender);
  const timestamp = timestampOf(item, entry);
  if (!pageId) return 'no page id';
  if (pageId.length > MAX_ID_LENGTH || pageId.includes('\u0000')) return 'invalid page id';
  if (!senderPsid) return 'no sender';
  if (timestamp === undefined) return 'no timestamp';
  if (timestamp <= 0 || timestamp > MAX_SCAN_TIME_MS) return 'timestamp out of range';
  if (ref !== undefined && ref !== null && typeof ref !== 'string') return 'ref not a string';
  // PostgreSQL text cannot hold NUL: it becomes U+FFFD, so the scan is still counted (as an
  // orphan: no code's ref has it). Measured after that: each NUL grows from 1 byte to 3.
  const storedRef = typeof ref === 'string' && ref !== '' ? ref.replaceAll('\u0000', '\uFFFD') : null;
  if (storedRef !== null && (storedRef.length > MAX_REF_LENGTH || Buffer.byteLength(storedRef) > MAX_REF_BYTES)) return 'ref too long';
  return {
    pageId,
    senderPsid,
    kind: found.kind,
    ref: storedRef,
    // A source is informative, so it is cleaned rather than refused.
    source: typeof source === 'string' && source !== '' ? source.replaceAll('\u0000', '').slice(0, MAX_SOURCE_LENGTH) || null : null,
    occurredAt: new Date(Math.floor(timestamp)),
  };
}
