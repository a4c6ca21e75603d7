import { createHmac, randomBytes } from 'node:crypto';

/**
 * Replaces a PSID by a keyed hash: enough to recognise a redelivered event and to
 * count unique people, useless to anyone without the key.
 */
export class PsidHasher {
  private readonly key: Buffer;

  constructor(secrets: { psidHashKey?: string; appSecret?: string }) {
    const key =
      secrets.psidHashKey ??
      (secrets.appSecret ? createHmac('sha256', secrets.appSecret).update('psid-hash-key').digest('hex') : undefined);
    // Without a key the webhook refuses everything, so nothing is hashed; a random key keeps it safe anyway.
    this.key = key === undefined ? randomBytes(32) : Buffer.from(key);
  }

  hash(psid: string): string {
    return createHmac('sha256', this.key).update(psid).digest('hex');
  }
}
