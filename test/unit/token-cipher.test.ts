import { randomBytes } from 'node:crypto';
import { keyIdOf, TokenCipher, UnknownTokenKeyError } from '../../src/pages/token-cipher';

const KEY = randomBytes(32);
const OLD = randomBytes(32);

describe('TokenCipher', () => {
  it('seals and opens a token, with the id of the current key', () => {
    const cipher = new TokenCipher(KEY);
    const sealed = cipher.seal('EAAG-token', '123');
    expect(sealed.keyId).toBe(keyIdOf(KEY));
    expect(sealed.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(Buffer.from(sealed.ciphertext, 'base64').toString('latin1')).not.toContain('EAAG-token');
    expect(cipher.open(sealed, '123')).toBe('EAAG-token');
  });

  it('uses a fresh IV each time', () => {
    const cipher = new TokenCipher(KEY);
    expect(cipher.seal('same', '1').ciphertext).not.toBe(cipher.seal('same', '1').ciphertext);
  });

  it('opens tokens of a previous key and tells they are stale', () => {
    const sealedUnderOld = new TokenCipher(OLD).seal('old-token', '7');
    const cipher = new TokenCipher(KEY, [OLD]);
    expect(cipher.open(sealedUnderOld, '7')).toBe('old-token');
    expect(cipher.isStale(sealedUnderOld.keyId)).toBe(true);
    expect(cipher.isStale(keyIdOf(KEY))).toBe(false);
    expect(cipher.seal('new', '7').keyId).toBe(keyIdOf(KEY));
  });

  it('refuses a token of an unknown key', () => {
    const sealed = new TokenCipher(OLD).seal('t', '1');
    expect(() => new TokenCipher(KEY).open(sealed, '1')).toThrow(UnknownTokenKeyError);
  });

  it('refuses a modified ciphertext, and a ciphertext moved to another page', () => {
    const cipher = new TokenCipher(KEY);
    const sealed = cipher.seal('token', '1');
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    bytes[bytes.length - 1] ^= 1;
    expect(() => cipher.open({ ...sealed, ciphertext: bytes.toString('base64') }, '1')).toThrow();
    expect(() => cipher.open(sealed, '2')).toThrow();
    expect(() => cipher.open({ ...sealed, ciphertext: 'AAAA' }, '1')).toThrow('truncated');
  });

  it('cannot seal without a current key', () => {
    const cipher = new TokenCipher(undefined);
    expect(cipher.canEncrypt).toBe(false);
    expect(() => cipher.seal('t', '1')).toThrow('ENCRYPTION_KEY');
  });

  it('names different keys differently', () => {
    expect(keyIdOf(KEY)).not.toBe(keyIdOf(OLD));
    expect(keyIdOf(Buffer.from(KEY))).toBe(keyIdOf(KEY));
  });
});
