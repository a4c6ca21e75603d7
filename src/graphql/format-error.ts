import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { PUBLIC_ERROR_CODES } from '../errors';
import { logger } from '../logger';
import { inputFieldOf } from './input-error-fields';

/** Errors GraphQL and Apollo raise about the request itself: safe and useful to show. */
const REQUEST_ERROR_CODES = new Set([
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
 * Keeps the errors of src/errors.ts and of request validation as they are, gives
 * bad argument values the BAD_USER_INPUT code and their field, and masks everything
 * else (in production entirely, elsewhere keeping the message for the developer).
 */
export function createErrorFormatter(production: boolean) {
  return (formatted: GraphQLFormattedError, raw: unknown): GraphQLFormattedError => {
    const error = unwrapResolverError(raw);
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && PUBLIC_ERROR_CODES.has(code) && code !== 'BAD_USER_INPUT') return formatted;

    if (error instanceof GraphQLError && BAD_VALUE_MESSAGE.test(error.message) && !formatted.extensions?.field) {
      const field = inputFieldOf(error);
      const { stacktrace: _stacktrace, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions: { ...extensions, code: 'BAD_USER_INPUT', ...(field ? { field } : {}) } };
    }
    if (typeof code === 'string' && (PUBLIC_ERROR_CODES.has(code) || REQUEST_ERROR_CODES.has(code))) return formatted;

    logger.error('unexpected error while resolving a request', {
      error: error instanceof Error ? error.message : String(error),
      stack: error instanceof Error ? error.stack : undefined,
      path: formatted.path,
    });
    return {
      message: production ? 'Internal server error' : formatted.message,
      ...(formatted.locations ? { locations: formatted.locations } : {}),
      ...(formatted.path ? { path: formatted.path } : {}),
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
