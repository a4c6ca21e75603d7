import {
  buildSchema,
  execute,
  GraphQLError,
  locatedError,
  parse,
  Source,
  validate,
  type ExecutionResult,
  type GraphQLFormattedError,
  type OperationDefinitionNode,
} from 'graphql';
import {
  BadUserInputError,
  ForbiddenError,
  NotFoundError,
  type PublicError,
  UnauthenticatedError,
  UpstreamError,
  UpstreamUnavailableError,
} from '../../src/errors';
import { createErrorFormatter } from '../../src/graphql/format-error';
import { createLogger } from '../../src/logging/logger';

const schema = buildSchema(`
  input CodeDataInput { ref: String! }
  input GenerateCodeInput { imageSize: Int, data: CodeDataInput }
  type Code { id: ID, imageSize: Int }
  type Query { code(id: ID!): Code }
  type Mutation { generateCode(input: GenerateCodeInput!): Code }
`);

function setup(production: boolean) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'error', destination: { write: (line: string) => void lines.push(line) } });
  const formatter = createErrorFormatter(production, logger);
  /** As the gateway calls it: the error's toJSON() as the formatted error, and the error itself. */
  const format = (error: GraphQLError) => formatter(error.toJSON(), error);
  return { lines, formatter, format };
}

/** The `code` field of `{ code(id: "1") { id } }`, at line 1, column 3. */
const CODE_FIELD = (parse('{ code(id: "1") { id } }').definitions[0] as OperationDefinitionNode).selectionSet.selections[0];
const CODE_LOCATIONS = [{ line: 1, column: 3 }];

/** An error as graphql-js hands it over when the resolver of CODE_FIELD, at `path`, throws `error`. */
function resolverError(error: unknown, path: (string | number)[] = ['code']): GraphQLError {
  return locatedError(error, [CODE_FIELD], path);
}

/** A validation error with the code Apollo Server (and the gateway's graphql-ws DocumentCache) gives it. */
function validationError(document: string, code = 'GRAPHQL_VALIDATION_FAILED'): GraphQLError {
  const [error] = validate(schema, parse(new Source(document)));
  expect(error).toBeDefined();
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, extensions: { code } });
}

describe('createErrorFormatter: public errors', () => {
  const publicErrors: [string, PublicError][] = [
    ['BadUserInputError', new BadUserInputError('imageSize', 'imageSize must be between 100 and 2000')],
    ['NotFoundError', new NotFoundError('codeId', 'no code with id x')],
    ['UnauthenticatedError', new UnauthenticatedError()],
    ['ForbiddenError', new ForbiddenError('not yours')],
    ['UpstreamError', new UpstreamError('Graph API refused', { code: 190, type: 'OAuthException', fbtrace_id: 'abc' })],
    ['UpstreamUnavailableError', new UpstreamUnavailableError('Graph API timed out')],
  ];

  it.each(publicErrors)('%s thrown by a resolver is kept as is, even in production, and not logged', (_name, error) => {
    const { formatter, lines } = setup(true);
    const raw = resolverError(error, ['generateCode']);
    expect(raw.originalError).toBe(error);
    const formatted = raw.toJSON();
    const result = formatter(formatted, raw);
    expect(result).toBe(formatted);
    expect(result).toEqual({ message: error.message, locations: CODE_LOCATIONS, path: ['generateCode'], extensions: error.extensions });
    expect(lines).toEqual([]);
  });

  it('keeps the field and upstream details of a public error', () => {
    const { format } = setup(true);
    expect(format(resolverError(new BadUserInputError('data.ref', 'bad ref'))).extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'data.ref',
    });
    expect(format(resolverError(new UpstreamError('refused', { code: 190 }))).extensions).toEqual({
      code: 'UPSTREAM_ERROR',
      upstream: { code: 190 },
    });
  });

  it('keeps a public error raised outside a resolver (no path)', () => {
    const { format, lines } = setup(true);
    expect(format(new NotFoundError('id', 'no such code'))).toEqual({
      message: 'no such code',
      extensions: { code: 'NOT_FOUND', field: 'id' },
    });
    expect(lines).toEqual([]);
  });
});

describe('createErrorFormatter: internal errors', () => {
  it('masks a plain resolver error in production: only the INTERNAL_SERVER_ERROR code, path kept', () => {
    const { format } = setup(true);
    expect(format(resolverError(new Error('connect ECONNREFUSED 10.0.0.5:5432'), ['code', 'scans']))).toEqual({
      message: 'Internal server error',
      locations: CODE_LOCATIONS,
      path: ['code', 'scans'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  });

  it('drops every extension of an internal error, including a stack trace and anything a library put there', () => {
    const { formatter } = setup(true);
    const raw = resolverError(new Error('secret detail'));
    const formatted: GraphQLFormattedError = {
      ...raw.toJSON(),
      locations: [{ line: 1, column: 3 }],
      extensions: { code: 'SOMETHING', stacktrace: ['Error: secret detail', '    at db.ts:1'], sql: 'SELECT secret' },
    };
    const result = formatter(formatted, raw);
    expect(result).toEqual({
      message: 'Internal server error',
      locations: [{ line: 1, column: 3 }],
      path: ['code'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(JSON.stringify(result)).not.toContain('secret');
  });

  it('keeps the message outside production, still with only the INTERNAL_SERVER_ERROR code', () => {
    const { format } = setup(false);
    expect(format(resolverError(new Error('connect ECONNREFUSED 10.0.0.5:5432')))).toEqual({
      message: 'connect ECONNREFUSED 10.0.0.5:5432',
      locations: CODE_LOCATIONS,
      path: ['code'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
  });

  it('logs the internal error once at level error with its message, stack and path', () => {
    const { format, lines } = setup(true);
    format(resolverError(new TypeError("Cannot read properties of undefined (reading 'id')"), ['generateCode', 'id']));
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]);
    expect(line).toMatchObject({
      level: 'error',
      message: 'unexpected error while resolving a request',
      path: ['generateCode', 'id'],
      err: { type: 'TypeError', message: "Cannot read properties of undefined (reading 'id')" },
    });
    expect(line.err.stack).toContain('TypeError');
  });

  it('masks a GraphQLError that is not a PublicError (only PublicErrors are meant for clients)', () => {
    const { format, lines } = setup(true);
    expect(format(resolverError(new GraphQLError('internal detail', { extensions: { code: 'CUSTOM' } })))).toEqual({
      message: 'Internal server error',
      locations: CODE_LOCATIONS,
      path: ['code'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(lines).toHaveLength(1);
  });

  it('masks something thrown that is not an Error at all', () => {
    const { format, lines } = setup(true);
    expect(format(resolverError('a string was thrown')).message).toBe('Internal server error');
    expect(lines).toHaveLength(1);
  });

  // src bug: BAD_VALUE_MESSAGE matches graphql's *output* coercion errors as well ("Int cannot represent ..."),
  // so a resolver returning a bad value is reported to the client as its own bad input, unlogged.
  it('a resolver returning a value its type cannot represent is an internal error, masked and logged', async () => {
    const { format, lines } = setup(true);
    const result = (await execute({
      schema,
      document: parse('{ code(id: "1") { imageSize } }'),
      rootValue: { code: () => ({ id: '1', imageSize: 1.5 }) },
    })) as ExecutionResult;
    const [raw] = result.errors!;
    expect(raw.message).toBe('Int cannot represent non-integer value: 1.5');
    expect(format(raw)).toEqual({
      message: 'Internal server error',
      locations: raw.locations,
      path: ['code', 'imageSize'],
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    });
    expect(lines).toHaveLength(1);
  });
});

describe('createErrorFormatter: request errors', () => {
  it('a literal value GraphQL refuses gets BAD_USER_INPUT and its field, without a stack trace', () => {
    const { formatter, format, lines } = setup(true);
    const raw = validationError('mutation { generateCode(input: { imageSize: 100.5 }) { id } }');
    const formatted = { ...raw.toJSON(), extensions: { code: 'GRAPHQL_VALIDATION_FAILED', stacktrace: ['GraphQLError: ...'] } };
    const result = formatter(formatted, raw);
    expect(result).toEqual({
      message: 'Int cannot represent non-integer value: 100.5',
      locations: raw.locations,
      extensions: { code: 'BAD_USER_INPUT', field: 'imageSize' },
    });
    expect(format(raw).extensions).toEqual({ code: 'BAD_USER_INPUT', field: 'imageSize' });
    expect(lines).toEqual([]);
  });

  it('a nested literal value gets its dotted field', () => {
    const { format } = setup(true);
    expect(format(validationError('mutation { generateCode(input: { data: { ref: 5 } }) { id } }')).extensions).toEqual({
      code: 'BAD_USER_INPUT',
      field: 'data.ref',
    });
  });

  it('an unknown input field is BAD_USER_INPUT (without a field: the error points at the field, not a value)', () => {
    const { format } = setup(true);
    const result = format(validationError('mutation { generateCode(input: { nope: 1 }) { id } }'));
    expect(result.message).toBe('Field "nope" is not defined by type "GenerateCodeInput".');
    expect(result.extensions).toEqual({ code: 'BAD_USER_INPUT' });
  });

  it('a variable GraphQL refuses gets BAD_USER_INPUT and the field inside it', () => {
    const { format, lines } = setup(true);
    const result = execute({
      schema,
      document: parse('mutation M($input: GenerateCodeInput!) { generateCode(input: $input) { id } }'),
      variableValues: { input: { data: { ref: 7 } } },
    }) as ExecutionResult;
    const [raw] = result.errors!;
    expect(format(raw)).toEqual({
      message: 'Variable "$input" got invalid value 7 at "input.data.ref"; String cannot represent a non string value: 7',
      locations: raw.locations,
      extensions: { code: 'BAD_USER_INPUT', field: 'data.ref' },
    });
    expect(lines).toEqual([]);
  });

  it('a field already given is not replaced', () => {
    const { format } = setup(true);
    const raw = new GraphQLError('Int cannot represent non-integer value: 1.5', {
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED', field: 'given' },
    });
    expect(format(raw).extensions).toEqual({ code: 'GRAPHQL_VALIDATION_FAILED', field: 'given' });
  });

  it('keeps other GRAPHQL_VALIDATION_FAILED errors as they are, unlogged', () => {
    const { format, lines } = setup(true);
    const raw = validationError('{ code(id: "1") { nope } }');
    const formatted = raw.toJSON();
    expect(format(raw)).toEqual(formatted);
    expect(formatted).toMatchObject({
      message: 'Cannot query field "nope" on type "Code".',
      extensions: { code: 'GRAPHQL_VALIDATION_FAILED' },
    });
    expect(lines).toEqual([]);
  });

  it('keeps GRAPHQL_PARSE_FAILED errors as they are, unlogged', () => {
    const { format, lines } = setup(true);
    let raw: GraphQLError | undefined;
    try {
      parse('{ code(id: ');
    } catch (error) {
      raw = new GraphQLError((error as GraphQLError).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    }
    expect(format(raw!)).toEqual({ message: 'Syntax Error: Unexpected <EOF>.', extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    expect(lines).toEqual([]);
  });

  it.each(['BAD_REQUEST', 'PERSISTED_QUERY_NOT_FOUND', 'OPERATION_RESOLUTION_FAILURE'])('keeps %s', (code) => {
    const { format, lines } = setup(true);
    const raw = new GraphQLError('request problem', { extensions: { code } });
    expect(format(raw)).toEqual({ message: 'request problem', extensions: { code } });
    expect(lines).toEqual([]);
  });
});
