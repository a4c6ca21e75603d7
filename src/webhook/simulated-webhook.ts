import { ScanKind } from '../scans/scan-kind';

/** One scan to simulate, as Messenger would report it. */
export interface SimulatedScan {
  pageId: string;
  /** omitted for the page's static code */
  ref?: string | null;
  kind?: ScanKind;
  /** omitted when Messenger omits it; SHORTLINK for a QR code of an m.me link */
  source?: string | null;
  senderPsid: string;
  timestamp: number;
}

/**
 * The messaging item Messenger sends for a scan: a `referral` for a person already
 * talking to the bot, a Get Started `postback` carrying the referral for a first-timer.
 */
export function messagingItemOf(scan: SimulatedScan): Record<string, unknown> {
  const referral: Record<string, unknown> = { type: 'OPEN_THREAD' };
  if (scan.ref != null) referral.ref = scan.ref;
  if (scan.source != null) referral.source = scan.source;
  const base = { sender: { id: scan.senderPsid }, recipient: { id: scan.pageId }, timestamp: scan.timestamp };
  return scan.kind === ScanKind.POSTBACK
    ? { ...base, postback: { title: 'Get Started', payload: 'GET_STARTED', referral } }
    : { ...base, referral };
}

/** A page webhook with one entry per page, in the order the scans are given. */
export function webhookBodyOf(scans: SimulatedScan[]): Record<string, unknown> {
  const entries = new Map<string, Record<string, unknown>[]>();
  for (const scan of scans) entries.set(scan.pageId, [...(entries.get(scan.pageId) ?? []), messagingItemOf(scan)]);
  return {
    object: 'page',
    entry: [...entries].map(([pageId, messaging]) => ({ id: pageId, time: Date.now(), messaging })),
  };
}

/**
 * Serialises like Meta: non-ASCII characters as \uXXXX escapes and `/` as `\/`,
 * which is why the signature must be checked on the raw bytes.
 */
export function serializeLikeMeta(body: unknown): string {
  return JSON.stringify(body)
    .replace(/\//g, '\\/')
    .replace(/[\u007f-\uffff]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
