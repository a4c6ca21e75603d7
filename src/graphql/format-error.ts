import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { PublicError } from '../errors';
import type { Logger } from '../logging/logger';
import { inputFieldOf } from './input-error-fields';

/** Errors GraphQL and Apollo raise about the request itself: safe and useful to show. */
const REQUEST_ERROR_CODES = new Set([
  // Apollo's code for a variable value it refused before execution.
  'BAD_USER_INPUT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
]);

/** Validation messages that are about an argument's value rather than the query's shape. */
const BAD_VALUE_MESSAGE =
  /cannot represent|^Expected value of type|is not defined by type|does not exist in "\w+" enum|^Variable "\$\w+" got invalid value/;

/**
 * Keeps PublicErrors (src/errors.ts) and the errors of request validation as they are, gives
 * bad argument values the BAD_USER_INPUT code and their field, and masks everything
 * else (in production entirely, elsewhere keeping the message for the developer).
 */
export function createErrorFormatter(production: boolean, logger: Logger) {
  return (formatted: GraphQLFormattedError, raw: unknown): GraphQLFormattedError => {
    const error = unwrapResolverError(raw);
    if (error instanceof PublicError) return formatted;
    const code = formatted.extensions?.code;

    // Only before execution (no path): during execution the same messages mean a resolver
    // returned a value its type cannot hold, a bug of ours, not of the request.
    if (
      error instanceof GraphQLError &&
      formatted.path === undefined &&
      BAD_VALUE_MESSAGE.test(error.message) &&
      !formatted.extensions?.field
    ) {
      const field = inputFieldOf(error);
      const { stacktrace: _stacktrace, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions: { ...extensions, code: 'BAD_USER_INPUT', ...(field ? { field } : {}) } };
    }
    if (typeof code === 'string' && REQUEST_ERROR_CODES.has(code)) return formatted;

    logger.error({ err: error, path: formatted.path }, 'unexpected error while resolving a request');
    return {
      message: production ? 'Internal server error' : formatted.message,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
