import { createHash, timingSafeEqual } from 'node:crypto';

export type Role = 'admin';

export interface Principal {
  role: Role;
}

const digest = (key: string) => createHash('sha256').update(key).digest();

/** The key of an `Authorization: Bearer <key>` value, or undefined. */
export function bearerToken(authorization: unknown): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

/** Compares digests, so the comparison takes the same time whatever the lengths. */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/**
 * API keys. With none configured the API is open (a fresh install, a private
 * network); once a key exists every GraphQL request must present one.
 */
export class ApiKeys {
  private readonly keys: { digest: Buffer; principal: Principal }[];

  constructor(adminApiKey: string | undefined) {
    this.keys = adminApiKey ? [{ digest: digest(adminApiKey), principal: { role: 'admin' } }] : [];
  }

  get required(): boolean {
    return this.keys.length > 0;
  }

  /** The principal of an `Authorization: Bearer <key>` value; undefined when missing or unknown. */
  authenticate(authorization: unknown): Principal | undefined {
    const key = bearerToken(authorization);
    if (key === undefined) return undefined;
    const presented = digest(key);
    return this.keys.find((candidate) => timingSafeEqual(candidate.digest, presented))?.principal;
  }
}
