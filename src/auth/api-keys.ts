import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { UnauthenticatedError } from '../errors';

export type Role = 'admin';

export interface Principal {
  role: Role;
}

const digest = (key: string) => createHash('sha256').update(key).digest();

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
    if (typeof authorization !== 'string') return undefined;
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) return undefined;
    // Comparing digests keeps the comparison constant-time whatever the key lengths.
    const presented = digest(match[1]);
    return this.keys.find((key) => timingSafeEqual(key.digest, presented))?.principal;
  }

  /** Express guard for /graphql over HTTP: 401 with an UNAUTHENTICATED GraphQL error. */
  httpGuard(): RequestHandler {
    return (request, response, next) => {
      if (!this.required || this.authenticate(request.get('authorization'))) {
        next();
        return;
      }
      const error = new UnauthenticatedError();
      response
        .status(401)
        .set('WWW-Authenticate', 'Bearer')
        .json({ errors: [{ message: error.message, extensions: { code: 'UNAUTHENTICATED' } }] });
    };
  }
}
