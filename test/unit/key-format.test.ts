import { createHash } from 'node:crypto';
import { DISPLAYED_PREFIX_LENGTH, generateKey, hashKey, isWellFormedKey, KEY_PREFIX } from '../../src/auth/key-format';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const KEY_SHAPE = /^mcg_[0-9A-Za-z]{38}$/;

/** Every key that differs from `key` in exactly one position, by any other base62 character. */
function oneCharacterChanges(key: string): { position: number; changed: string }[] {
  const changes: { position: number; changed: string }[] = [];
  for (let position = 0; position < key.length; position++) {
    for (const character of BASE62) {
      if (character === key[position]) continue;
      changes.push({ position, changed: key.slice(0, position) + character + key.slice(position + 1) });
    }
  }
  return changes;
}

describe('key format', () => {
  it('generates mcg_ + 32 base62 characters of secret + 6 base62 characters of checksum', () => {
    const key = generateKey();
    expect(KEY_PREFIX).toBe('mcg_');
    expect(key).toMatch(KEY_SHAPE);
    expect(key).toHaveLength(4 + 32 + 6);
    expect(isWellFormedKey(key)).toBe(true);
    // Lists show the prefix and 8 characters of the secret, never enough to use the key.
    expect(DISPLAYED_PREFIX_LENGTH).toBe(12);
  });

  it.each([0, 1, 2])('refuses every one-character change of a key, in any position (key %i)', () => {
    const key = generateKey();
    const changes = oneCharacterChanges(key);
    // 42 positions, each changed to each of the 61 other base62 characters (the `_` of
    // the prefix, not being one, to all 62).
    expect(changes).toHaveLength(41 * 61 + 62);
    expect(new Set(changes.map(({ position }) => position)).size).toBe(42);
    const accepted = changes.filter(({ changed }) => isWellFormedKey(changed));
    expect(accepted).toEqual([]);
    expect(isWellFormedKey(key)).toBe(true);
  });

  it('refuses a swap of two adjacent different characters of the secret', () => {
    const key = generateKey();
    for (let position = KEY_PREFIX.length; position < key.length - 1; position++) {
      if (key[position] === key[position + 1]) continue;
      const swapped = key.slice(0, position) + key[position + 1] + key[position] + key.slice(position + 2);
      expect({ position, accepted: isWellFormedKey(swapped) }).toEqual({ position, accepted: false });
    }
  });

  it.each([
    ['empty', ''],
    ['the prefix alone', 'mcg_'],
    ['a short key', 'mcg_abc'],
    ['a password', 'hunter2'],
    ['a bearer header', 'Bearer mcg_0123456789abcdefghijklmnopqrstuvwxyzAB'],
    ['another prefix', `mcx_${'a'.repeat(38)}`],
    ['an upper-case prefix', `MCG_${'a'.repeat(38)}`],
    ['a character outside base62', `mcg_${'a'.repeat(37)}-`],
    ['a non-ASCII letter', `mcg_${'a'.repeat(37)}é`],
    ['a NUL byte', `mcg_${'a'.repeat(37)}\u0000`],
    ['38 plausible characters without a valid checksum', `mcg_${'a'.repeat(38)}`],
  ])('refuses junk: %s', (_name, junk) => {
    expect(isWellFormedKey(junk)).toBe(false);
  });

  it('refuses a valid key with anything around it, or cut short, or lengthened', () => {
    const key = generateKey();
    for (const variant of [
      ` ${key}`,
      `${key} `,
      `${key}\n`,
      `\n${key}`,
      `${key}a`,
      key.slice(0, -1),
      key.slice(1),
      key.toUpperCase(),
      key.toLowerCase(),
      key.slice(KEY_PREFIX.length),
    ]) {
      if (variant === key) continue;
      expect({ variant, accepted: isWellFormedKey(variant) }).toEqual({ variant, accepted: false });
    }
  });

  it('hashes a key with SHA-256, the same way every time', () => {
    const key = generateKey();
    expect(hashKey(key)).toBe(hashKey(key));
    expect(hashKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(hashKey(key)).toBe(createHash('sha256').update(key).digest('hex'));
    // The FIPS 180-2 test vector: stable across versions and machines.
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashKey(key)).not.toContain(key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 8));
  });

  it('generates 1,000 distinct keys, with distinct hashes and distinct displayed prefixes', () => {
    const keys = Array.from({ length: 1000 }, () => generateKey());
    expect(keys.every((key) => KEY_SHAPE.test(key) && isWellFormedKey(key))).toBe(true);
    expect(new Set(keys).size).toBe(1000);
    expect(new Set(keys.map(hashKey)).size).toBe(1000);
    // 8 base62 characters of secret: a collision among 1,000 would be a broken generator.
    expect(new Set(keys.map((key) => key.slice(0, DISPLAYED_PREFIX_LENGTH))).size).toBe(1000);
    // Every base62 character turns up in the secrets: the whole alphabet is used.
    const used = new Set(keys.flatMap((key) => [...key.slice(KEY_PREFIX.length, KEY_PREFIX.length + 32)]));
    expect([...used].sort().join('')).toBe([...BASE62].sort().join(''));
  });
});
