import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, getIntrospectionQuery, type DocumentNode, type GraphQLError, type GraphQLFormattedError } from 'graphql';
import { hidingSuggestions, OPERATION_LIMITS, OperationLimitsGate, parseWithinLimits } from '../../src/graphql/operation-limits';

const schema = buildSchema(readFileSync(path.join(__dirname, '../../schema/schema.graphql'), 'utf8'));

/** The limits a text breaks (extensions.limit of each error), [] when it is within them. */
function limitsBroken(query: string): unknown[] {
  const result = parseWithinLimits(schema, query);
  return Array.isArray(result) ? (result as GraphQLError[]).map((error) => error.extensions.limit) : [];
}

const DASHBOARD = `query Dashboard($after: String) {
  codes(first: 100, after: $after, orderBy: SCAN_COUNT_DESC) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id ref label scanCount lastScannedAt imageUrl
        scans(first: 100) {
          totalCount
          pageInfo { hasNextPage endCursor }
          edges { cursor node { id kind source occurredAt code { id } } }
        }
      }
    }
  }
}`;

describe('parseWithinLimits', () => {
  it('passes a dashboard query of depth 8 with two connections of 100', () => {
    const document = parseWithinLimits(schema, DASHBOARD) as DocumentNode;
    expect(document.kind).toBe('Document');
  });

  it('passes the introspection queries of GraphiQL and of code generators (deeper than the depth limit)', () => {
    const everything = getIntrospectionQuery({
      descriptions: true,
      specifiedByUrl: true,
      directiveIsRepeatable: true,
      schemaDescription: true,
      inputValueDeprecation: true,
      oneOf: true,
    });
    expect(limitsBroken(everything)).toEqual([]);
    expect(limitsBroken(getIntrospectionQuery())).toEqual([]);
  });

  it('refuses each limit by name, with the code Apollo gives validation errors', () => {
    const deep = '{ code(id: "x") { scans { edges { node { code { scans { edges { node { code { scans { totalCount } } } } } } } } } } }';
    expect(limitsBroken(deep)).toEqual(['depth']);
    const aliases = `{ ${Array.from({ length: OPERATION_LIMITS.maxAliases + 1 }, (_, i) => `a${i}: codes { totalCount }`).join(' ')} }`;
    expect(limitsBroken(aliases)).toEqual(['aliases']);
    const directives = `{ ${Array.from({ length: OPERATION_LIMITS.maxDirectives + 1 }, () => '__typename @include(if: true)').join(' ')} }`;
    expect(limitsBroken(directives)).toEqual(['directives']);
    const costly =
      '{ codes(first: 100) { edges { node { scans(first: 100) { edges { node { code { scans(first: 30) { totalCount } } } } } } } } }';
    expect(limitsBroken(costly)).toEqual(['cost']);
    const tokens = `{${' __typename'.repeat(OPERATION_LIMITS.maxTokens)}}`;
    expect(limitsBroken(tokens)).toEqual(['tokens']);

    const [error] = parseWithinLimits(schema, deep) as GraphQLError[];
    expect(error.message).toBe('Query depth limit of 10 exceeded, found 11.');
    expect(error.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('does not count fragments as depth, nor aliases of __typename', () => {
    const viaFragments = `{ codes { ...Page } } fragment Page on CodeConnection { edges { node { ...Node } } }
      fragment Node on Code { scans { edges { node { code { id } } } } }`;
    expect(limitsBroken(viaFragments)).toEqual([]);
    expect(limitsBroken(`{ ${Array.from({ length: 150 }, (_, i) => `t${i}: __typename`).join(' ')} }`)).toEqual([]);
  });

  it('exempts introspection from depth only: its cost and aliases still count', () => {
    let fragments = 'fragment F0 on __Schema { __typename }\n';
    for (let level = 1; level <= 24; level++) fragments += `fragment F${level} on __Schema { ...F${level - 1} ...F${level - 1} }\n`;
    expect(limitsBroken(`{ __schema { ...F24 } } ${fragments}`)).toEqual(['cost']);
    const aliases = Array.from({ length: OPERATION_LIMITS.maxAliases + 1 }, (_, i) => `t${i}: types { name }`).join(' ');
    expect(limitsBroken(`{ __schema { ${aliases} } }`)).toEqual(expect.arrayContaining(['aliases']));
  });

  it('stops parsing at the token limit, with the position of the token past it', () => {
    const [error] = parseWithinLimits(schema, `{${' __typename'.repeat(90_000)}}`) as GraphQLError[];
    expect(error.message).toBe('Operation too large: more than 1,000 tokens (names, punctuators, values). Parsing aborted.');
    expect(error.locations).toEqual([{ line: 1, column: 2 + 999 * 11 + 1 }]);
  });

  it('reports other syntax errors as GRAPHQL_PARSE_FAILED', () => {
    const [error] = parseWithinLimits(schema, '{ code(id: ') as GraphQLError[];
    expect(error.extensions.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(error.message).toMatch(/^Syntax Error/);
  });

  it("leaves graphql's own validation to graphql: unknown fields pass the limits", () => {
    expect(limitsBroken('{ notAField }')).toEqual([]);
  });
});

describe('OperationLimitsGate', () => {
  it('refuses what parseWithinLimits refuses, the same verdict for the same text', () => {
    const gate = new OperationLimitsGate(schema);
    const deep = '{ code(id: "x") { scans { edges { node { code { scans { edges { node { code { scans { totalCount } } } } } } } } } } }';
    const first = gate.refusal(deep);
    expect(first?.map((error) => error.extensions.limit)).toEqual(['depth']);
    expect(gate.refusal(deep)).toBe(first);
    expect(gate.refusal(DASHBOARD)).toBeUndefined();
    expect(gate.refusal(DASHBOARD)).toBeUndefined();
  });
});

describe('hidingSuggestions', () => {
  const format = hidingSuggestions((formatted: GraphQLFormattedError) => formatted);

  it('removes "Did you mean …?" wherever graphql puts it, and nothing else', () => {
    expect(format({ message: 'Cannot query field "cod" on type "Query". Did you mean "code" or "codes"?' }, undefined).message).toBe(
      'Cannot query field "cod" on type "Query".',
    );
    expect(
      format(
        { message: 'Value "SCAN_COUNT" does not exist in "CodeOrderBy" enum. Did you mean the enum value "SCAN_COUNT_DESC"?' },
        undefined,
      ).message,
    ).toBe('Value "SCAN_COUNT" does not exist in "CodeOrderBy" enum.');
    const plain = { message: 'Cannot query field "x" on type "Query".', extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } };
    expect(format(plain, undefined)).toBe(plain);
  });

  it('keeps the rest of the formatted error', () => {
    const formatted = {
      message: 'Unknown type "Cod". Did you mean "Code"?',
      locations: [{ line: 1, column: 3 }],
      extensions: { code: 'X' },
    };
    expect(format(formatted, undefined)).toEqual({
      message: 'Unknown type "Cod".',
      locations: [{ line: 1, column: 3 }],
      extensions: { code: 'X' },
    });
  });
});
