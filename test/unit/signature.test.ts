import { createHmac } from 'node:crypto';
import { checkSignature, isValidSignature, signBody } from '../../src/webhook/signature';

const SECRET = 'app-secret-for-tests';
// Meta escapes unicode and "/" in the body it signs; the raw bytes are what count.
const BODY = Buffer.from('{"object":"page","entry":[{"id":"1","messaging":[{"referral":{"ref":"caf\\u00e9\\/7"}}]}]}');
const hmacHex = (body: Buffer | string, secret = SECRET) => createHmac('sha256', secret).update(body).digest('hex');

describe('signBody', () => {
  it('is sha256= and the hex HMAC-SHA256 of the raw bytes', () => {
    expect(signBody(BODY, SECRET)).toBe(`sha256=${hmacHex(BODY)}`);
    expect(signBody(BODY, SECRET)).toMatch(/^sha256=[0-9a-f]{64}$/);
  });

  it('signs a string as its UTF-8 bytes', () => {
    expect(signBody('{"ref":"café"}', SECRET)).toBe(signBody(Buffer.from('{"ref":"café"}', 'utf8'), SECRET));
  });

  it('round-trips with checkSignature', () => {
    expect(checkSignature(BODY, signBody(BODY, SECRET), SECRET)).toBe('valid');
    expect(checkSignature(Buffer.alloc(0), signBody(Buffer.alloc(0), SECRET), SECRET)).toBe('valid');
    expect(isValidSignature(BODY, signBody(BODY, SECRET), SECRET)).toBe(true);
  });
});

describe('checkSignature', () => {
  const valid = `sha256=${hmacHex(BODY)}`;

  it('valid: the exact header Meta sends', () => {
    expect(checkSignature(BODY, valid, SECRET)).toBe('valid');
  });

  it('valid with upper-case hex, an upper-case prefix or surrounding whitespace', () => {
    expect(checkSignature(BODY, `sha256=${hmacHex(BODY).toUpperCase()}`, SECRET)).toBe('valid');
    expect(checkSignature(BODY, `SHA256=${hmacHex(BODY)}`, SECRET)).toBe('valid');
    expect(checkSignature(BODY, `  ${valid}\t`, SECRET)).toBe('valid');
  });

  it('missing: no header', () => {
    expect(checkSignature(BODY, undefined, SECRET)).toBe('missing');
    expect(isValidSignature(BODY, undefined, SECRET)).toBe(false);
  });

  const malformed: [string, string][] = [
    ['empty', ''],
    ['no prefix', hmacHex(BODY)],
    ['sha1= (the old X-Hub-Signature)', `sha1=${createHmac('sha1', SECRET).update(BODY).digest('hex')}`],
    ['sha1= with a sha256 digest', `sha1=${hmacHex(BODY)}`],
    ['one hex digit short', valid.slice(0, -1)],
    ['one hex digit too many', `${valid}0`],
    ['not hex', `sha256=${'z'.repeat(64)}`],
    ['base64 instead of hex', `sha256=${createHmac('sha256', SECRET).update(BODY).digest('base64')}`],
    ['prefix only', 'sha256='],
    ['two signatures', `${valid},${valid}`],
  ];
  it.each(malformed)('malformed: %s', (_name, header) => {
    expect(checkSignature(BODY, header, SECRET)).toBe('malformed');
    expect(isValidSignature(BODY, header, SECRET)).toBe(false);
  });

  it('mismatch: signed with another secret', () => {
    expect(checkSignature(BODY, signBody(BODY, 'another-secret'), SECRET)).toBe('mismatch');
  });

  it('mismatch: one byte of the body changed', () => {
    const changed = Buffer.from(BODY);
    changed[10] ^= 0x01;
    expect(checkSignature(changed, valid, SECRET)).toBe('mismatch');
  });

  it('mismatch: one hex digit of the signature changed', () => {
    const last = valid.at(-1) === '0' ? '1' : '0';
    expect(checkSignature(BODY, valid.slice(0, -1) + last, SECRET)).toBe('mismatch');
  });

  it('mismatch: the body re-serialised (unicode and "/" unescaped) no longer matches', () => {
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(BODY.toString())));
    expect(reserialised.equals(BODY)).toBe(false);
    expect(checkSignature(reserialised, valid, SECRET)).toBe('mismatch');
    expect(isValidSignature(reserialised, valid, SECRET)).toBe(false);
  });

  it('mismatch: an empty secret is not a wildcard', () => {
    expect(checkSignature(BODY, valid, '')).toBe('mismatch');
  });
});
