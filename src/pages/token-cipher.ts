import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A token as stored: the id of the key it is encrypted under, and IV ‖ tag ‖ ciphertext in base64. */
export interface SealedToken {
  keyId: string;
  ciphertext: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Tells a key id apart from a hash of the same key used for anything else. */
const KEY_ID_LABEL = 'messenger-gateway page-token key id v1:';

/**
 * A short, stable name of a key, stored beside each ciphertext so that decryption picks
 * the right key among ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS. 64 bits of a hash of
 * a random 256-bit key tell nothing about the key.
 */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(KEY_ID_LABEL).update(key).digest('hex').slice(0, 16);
}

/** The token was sealed under a key this gateway was not given. */
export class UnknownTokenKeyError extends Error {
  constructor(readonly keyId: string) {
    super(`the token is encrypted under key ${keyId}, which is neither ENCRYPTION_KEY nor one of ENCRYPTION_KEY_PREVIOUS`);
    this.name = 'UnknownTokenKeyError';
  }
}

/**
 * AES-256-GCM of page tokens. `context` (the page id) is authenticated with each token,
 * so a ciphertext copied onto another page's row does not decrypt there.
 */
export class TokenCipher {
  private readonly keys = new Map<string, Buffer>();
  /** Id of the key new tokens are sealed under; undefined when ENCRYPTION_KEY is unset. */
  readonly currentKeyId: string | undefined;

  constructor(current: Buffer | undefined, previous: readonly Buffer[] = []) {
    for (const key of [current, ...previous]) {
      if (key === undefined) continue;
      if (key.length !== 32) throw new Error(`an AES-256 key is 32 bytes, got ${key.length}`);
      const id = keyIdOf(key);
      if (!this.keys.has(id)) this.keys.set(id, key);
    }
    this.currentKeyId = current === undefined ? undefined : keyIdOf(current);
  }

  get canEncrypt(): boolean {
    return this.currentKeyId !== undefined;
  }

  /** Whether a token sealed under `keyId` should be sealed again under the current key. */
  isStale(keyId: string): boolean {
    return this.currentKeyId !== undefined && keyId !== this.currentKeyId;
  }

  seal(token: string, context: string): SealedToken {
    if (this.currentKeyId === undefined) throw new Error('ENCRYPTION_KEY is not set: tokens cannot be encrypted');
    const key = this.keys.get(this.currentKeyId) as Buffer;
    // A fresh random IV per encryption: GCM must never see the same (key, IV) twice.
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const encrypted = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
    return { keyId: this.currentKeyId, ciphertext: Buffer.concat([iv, cipher.getAuthTag(), encrypted]).toString('base64') };
  }

  /** The token; UnknownTokenKeyError when its key is not configured, Error when it was tampered with. */
  open(sealed: SealedToken, context: string): string {
    const key = this.keys.get(sealed.keyId);
    if (!key) throw new UnknownTokenKeyError(sealed.keyId);
    const bytes = Buffer.from(sealed.ciphertext, 'base64');
    if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('the stored token is truncated');
    const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    // final() throws when the tag does not match: a modified ciphertext never yields a token.
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}
