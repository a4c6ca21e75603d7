import { GraphQLScalarType, Kind } from 'graphql';
import { BadUserInputError } from '../errors';

function parse(value: unknown): Date {
  const date = typeof value === 'string' ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new BadUserInputError('DateTime', `expected an ISO-8601 date-time string, got ${JSON.stringify(value)}`);
  }
  return date;
}

/** An instant as an ISO-8601 UTC string with milliseconds, e.g. 2026-11-25T07:22:17.000Z. */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  name: 'DateTime',
  description: 'An instant, as an ISO-8601 UTC string with milliseconds (2026-11-25T07:22:17.000Z).',
  serialize(value) {
    if (!(value instanceof Date)) throw new TypeError('DateTime can only serialize Date values');
    return value.toISOString();
  },
  parseValue: parse,
  parseLiteral(ast) {
    return parse(ast.kind === Kind.STRING ? ast.value : undefined);
  },
});
