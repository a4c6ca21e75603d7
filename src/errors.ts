import { GraphQLError } from 'graphql';

/**
 * Every error a client may see is one of these classes. Each carries its
 * `extensions.code`; anything else is an internal error and gets masked.
 */
export class BadUserInputError extends GraphQLError {
  readonly httpStatus = 400;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message, { extensions: { code: 'BAD_USER_INPUT', field } });
  }
}

export class NotFoundError extends GraphQLError {
  readonly httpStatus = 404;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message, { extensions: { code: 'NOT_FOUND', field } });
  }
}

export class UnauthenticatedError extends GraphQLError {
  readonly httpStatus = 401;
  constructor(message = 'A valid API key is required: send "Authorization: Bearer <key>".') {
    super(message, { extensions: { code: 'UNAUTHENTICATED', http: { status: 401 } } });
  }
}

export class ForbiddenError extends GraphQLError {
  readonly httpStatus = 403;
  constructor(message: string) {
    super(message, { extensions: { code: 'FORBIDDEN' } });
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
export class UpstreamError extends GraphQLError {
  readonly httpStatus = 502;
  constructor(message: string, upstream?: UpstreamDetails) {
    super(message, { extensions: { code: 'UPSTREAM_ERROR', ...(upstream ? { upstream } : {}) } });
  }
}

/** The Graph API or image host failed or timed out after retries; the client may retry later. */
export class UpstreamUnavailableError extends GraphQLError {
  readonly httpStatus = 503;
  constructor(message: string) {
    super(message, { extensions: { code: 'UPSTREAM_UNAVAILABLE', retryable: true } });
  }
}

/** Codes of the errors above: only these reach a client unmasked in production. */
export const PUBLIC_ERROR_CODES = new Set([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'UPSTREAM_ERROR',
  'UPSTREAM_UNAVAILABLE',
]);
