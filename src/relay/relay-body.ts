import { createHmac } from 'node:crypto';

/** A verified webhook request as the relay keeps it. */
export interface RelayRequest {
  /** the bytes received, exactly */
  raw: Buffer;
  contentType: string | undefined;
  /** X-Hub-Signature-256 as received (already checked) */
  signature256: string;
  /** X-Hub-Signature (SHA-1), when Meta sent it */
  signature1: string | undefined;
  /** the page of each element of `entry`, in order (undefined: the element names none) */
  entryPageIds: (string | undefined)[];
}

/** What one bot receives for one request. */
export interface RelayDelivery {
  url: string;
  body: Buffer;
  contentType: string;
  signature256: string;
  signature1: string | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isSpace = (byte: number) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

function skipSpace(bytes: Buffer, at: number): number {
  while (at < bytes.length && isSpace(bytes[at])) at++;
  return at;
}

/** The index after the JSON value starting at `at` (the body is already known to be valid JSON). */
function skipValue(bytes: Buffer, at: number): number {
  const first = bytes[at];
  if (first === QUOTE) {
    for (let i = at + 1; i < bytes.length; i++) {
      if (bytes[i] === BACKSLASH) i++;
      else if (bytes[i] === QUOTE) return i + 1;
    }
    throw new Error('unterminated string');
  }
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    for (let i = at; i < bytes.length; i++) {
      const byte = bytes[i];
      if (byte === QUOTE) i = skipValue(bytes, i) - 1;
      else if (byte === 0x7b || byte === 0x5b) depth++;
      else if (byte === 0x7d || byte === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    throw new Error('unterminated container');
  }
  let i = at;
  while (i < bytes.length && !isSpace(bytes[i]) && bytes[i] !== 0x2c && bytes[i] !== 0x7d && bytes[i] !== 0x5d) i++;
  return i;
}

/**
 * The byte ranges of the elements of the top-level `entry` array (the last one, as JSON.parse
 * reads duplicate keys), so that a split request carries each entry's bytes exactly as Meta
 * wrote them (its escaping, its number formats). undefined when the body is not shaped so.
 */
export function entryRanges(raw: Buffer): [number, number][] | undefined {
  try {
    let at = skipSpace(raw, 0);
    if (raw[at] !== 0x7b) return undefined;
    at = skipSpace(raw, at + 1);
    let ranges: [number, number][] | undefined;
    while (at < raw.length && raw[at] !== 0x7d) {
      const keyEnd = skipValue(raw, at);
      const key: unknown = JSON.parse(raw.subarray(at, keyEnd).toString('utf8'));
      at = skipSpace(raw, keyEnd);
      if (raw[at] !== 0x3a) return undefined;
      at = skipSpace(raw, at + 1);
      const valueEnd = skipValue(raw, at);
      if (key === 'entry') ranges = raw[at] === 0x5b ? elementRanges(raw, at) : undefined;
      at = skipSpace(raw, valueEnd);
      if (raw[at] === 0x2c) at = skipSpace(raw, at + 1);
    }
    return ranges;
  } catch {
    return undefined;
  }
}

function elementRanges(raw: Buffer, open: number): [number, number][] {
  const ranges: [number, number][] = [];
  let at = skipSpace(raw, open + 1);
  while (raw[at] !== 0x5d) {
    const end = skipValue(raw, at);
    ranges.push([at, end]);
    at = skipSpace(raw, end);
    if (raw[at] === 0x2c) at = skipSpace(raw, at + 1);
    else if (raw[at] !== 0x5d) throw new Error('malformed array');
  }
  return ranges;
}

export function hmacHeader(algorithm: 'sha256' | 'sha1', body: Buffer, appSecret: string): string {
  return `${algorithm}=${createHmac(algorithm, appSecret).update(body).digest('hex')}`;
}

/**
 * The deliveries of one request: `urlOf` gives each entry's bot (undefined: none). When every
 * entry goes to one bot, the request is forwarded as received, signatures included; else each
 * bot gets a body of its own entries (their bytes as received) signed with the app secret,
 * with X-Hub-Signature too when Meta sent one.
 */
export function deliveriesOf(
  request: RelayRequest,
  urlOf: (pageId: string | undefined) => string | undefined,
  appSecret: string,
): RelayDelivery[] {
  const targets = request.entryPageIds.map(urlOf);
  const distinct = new Set(targets);
  const asReceived = (url: string | undefined): RelayDelivery[] =>
    url === undefined
      ? []
      : [
          {
            url,
            body: request.raw,
            contentType: request.contentType ?? 'application/json',
            signature256: request.signature256,
            signature1: request.signature1,
          },
        ];
  // No entry at all (an empty batch) still reaches the default bot: every verified request is relayed.
  if (targets.length === 0) return asReceived(urlOf(undefined));
  if (distinct.size === 1) return asReceived(targets[0]);
  const ranges = entryRanges(request.raw);
  // The scanner and the parser read the same JSON, so the counts agree; if they ever did not,
  // relaying entries to the wrong bot would be worse than relaying nothing of this request.
  if (!ranges || ranges.length !== targets.length) throw new Error('the entries of the webhook body could not be located');
  const byUrl = new Map<string, Buffer[]>();
  targets.forEach((url, index) => {
    if (url === undefined) return;
    const [start, end] = ranges[index];
    byUrl.set(url, [...(byUrl.get(url) ?? []), request.raw.subarray(start, end)]);
  });
  return [...byUrl].map(([url, entries]) => {
    const body = Buffer.concat([
      Buffer.from('{"object":"page","entry":['),
      ...entries.flatMap((entry, index) => (index === 0 ? [entry] : [Buffer.from(','), entry])),
      Buffer.from(']}'),
    ]);
    return {
      url,
      body,
      contentType: 'application/json',
      signature256: hmacHeader('sha256', body, appSecret),
      signature1: request.signature1 === undefined ? undefined : hmacHeader('sha1', body, appSecret),
    };
  });
}
