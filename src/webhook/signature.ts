import { createHmac, timingSafeEqual } from 'node:crypto';

const SIGNATURE_HEADER = /^sha256=([0-9a-f]{64})$/i;

/** Why a signature was refused, for the log (never the body or the signature itself). */
export type SignatureCheck = 'valid' | 'missing' | 'malformed' | 'mismatch';

/**
 * Checks `X-Hub-Signature-256: sha256=<hex>` against the HMAC-SHA256 of the raw
 * body bytes. The bytes must be the ones received: Meta escapes unicode and `/`,
 * so re-serialised JSON would not match.
 */
export function checkSignature(rawBody: Buffer, header: string | undefined, appSecret: string): SignatureCheck {
  if (header === undefined) return 'missing';
  const match = SIGNATURE_HEADER.exec(header.trim());
  if (!match) return 'malformed';
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  const received = Buffer.from(match[1], 'hex');
  return received.length === expected.length && timingSafeEqual(received, expected) ? 'valid' : 'mismatch';
}

export function isValidSignature(rawBody: Buffer, header: string | undefined, appSecret: string): boolean {
  return checkSignature(rawBody, header, appSecret) === 'valid';
}

export function signBody(rawBody: Buffer | string, appSecret: string): string {
  return `sha256=${createHmac('sha256', appSecret).update(rawBody).digest('hex')}`;
}
