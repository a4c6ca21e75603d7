import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * API keys look like `mcg_<32 base62 characters><6 base62 characters of CRC32>`: the
 * prefix makes a leaked key recognisable (secret scanners, logs, a paste in a chat), and
 * the checksum lets a typo or a guessed key be refused without touching the database.
 */
export const KEY_PREFIX = 'mcg_';
const SECRET_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_SHAPE = new RegExp(`^${KEY_PREFIX}[0-9A-Za-z]{${SECRET_LENGTH + CHECKSUM_LENGTH}}$`);
/** How many characters of a key lists show to recognise it by (the prefix and 8 of the secret). */
export const DISPLAYED_PREFIX_LENGTH = KEY_PREFIX.length + 8;

function base62(value: bigint, length: number): string {
  let text = '';
  let rest = value;
  for (let index = 0; index < length; index++) {
    text = BASE62[Number(rest % 62n)] + text;
    rest /= 62n;
  }
  return text;
}

function checksumOf(body: string): string {
  return base62(BigInt(crc32(body)), CHECKSUM_LENGTH);
}

/** A new key: 32 base62 characters are 190 bits drawn from the CSPRNG. */
export function generateKey(): string {
  const secret = base62(BigInt(`0x${randomBytes(24).toString('hex')}`), SECRET_LENGTH);
  const body = `${KEY_PREFIX}${secret}`;
  return `${body}${checksumOf(body)}`;
}

/** Whether a presented string could be a key of ours (shape and checksum); no database needed. */
export function isWellFormedKey(key: string): boolean {
  if (!KEY_SHAPE.test(key)) return false;
  const body = key.slice(0, KEY_PREFIX.length + SECRET_LENGTH);
  return checksumOf(body) === key.slice(body.length);
}

/**
 * What is stored instead of the key. A fast hash is enough: the key is 190 random bits,
 * so there is no dictionary to try (the reason passwords need a slow one).
 */
export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
