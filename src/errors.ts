import { GraphQLError } from 'graphql';

/**
 * The base of every error a client may see. Each subclass carries its
 * `extensions.code`; any error that is not a PublicError is internal and gets masked.
 */
export abstract class PublicError extends GraphQLError {
  protected constructor(message: string, code: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { code, ...extensions } });
  }
}

export class BadUserInputError extends PublicError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message, 'BAD_USER_INPUT', { field });
  }
}

export class NotFoundError extends PublicError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message, 'NOT_FOUND', { field });
  }
}

export class UnauthenticatedError extends PublicError {
  constructor(message = 'A valid API key is required: send "Authorization: Bearer <key>".') {
    super(message, 'UNAUTHENTICATED', { http: { status: 401 } });
  }
}

/** The key may not do this (its role), or names a page outside its pages (`field` says where). */
export class ForbiddenError extends PublicError {
  constructor(message: string, field?: string) {
    super(message, 'FORBIDDEN', field === undefined ? {} : { field });
  }
}

/** Past GENERATE_RATE_LIMIT: nothing of the call was done; `retryAfter` seconds until it fits. */
export class RateLimitedError extends PublicError {
  constructor(
    message: string,
    readonly retryAfter: number,
  ) {
    super(message, 'RATE_LIMITED', { retryAfter });
  }
}

/** What the Graph API said when it refused a request. */
export interface UpstreamDetails {
  code?: number;
  type?: string;
  subcode?: number;
  fbtrace_id?: string;
}

/** The Graph API refused, or what it handed back is unusable. Retrying will not help. */
export class UpstreamError extends PublicError {
  constructor(message: string, upstream?: UpstreamDetails) {
    super(message, 'UPSTREAM_ERROR', upstream ? { upstream } : {});
  }
}

/** The Graph API or image host failed or timed out after retries; the client may retry later. */
export class UpstreamUnavailableError extends PublicError {
  constructor(message: string) {
    super(message, 'UPSTREAM_UNAVAILABLE', { retryable: true });
  }
}

/** A subscription past the most a connection may hold: refused alone, the connection and the others go on. */
export class TooManySubscriptionsError extends PublicError {
  constructor(limit: number) {
    super(
      `Too many subscriptions on this connection: at most ${limit} at once. Complete one, or open another connection.`,
      'TOO_MANY_SUBSCRIPTIONS',
      {
        limit,
      },
    );
  }
}
