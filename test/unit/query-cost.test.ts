import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema, Kind, parse, validate, type FragmentDefinitionNode, type OperationDefinitionNode } from 'graphql';
import { operationCost, queryCostRule } from '../../src/graphql/query-cost';

// The gateway's own schema, as `npm run build` writes it (checked against the code by schema.test.ts).
const schema = buildSchema(readFileSync(path.join(__dirname, '../../schema/schema.graphql'), 'utf8'));
const options = { maxPageSize: 100, unpagedListSize: 10 };

/** The cost of each operation of `query`, in order. */
function costs(query: string, costOptions = options): number[] {
  const document = parse(query);
  const fragments = new Map(
    document.definitions
      .filter((definition): definition is FragmentDefinitionNode => definition.kind === Kind.FRAGMENT_DEFINITION)
      .map((fragment) => [fragment.name.value, fragment]),
  );
  return document.definitions
    .filter((definition): definition is OperationDefinitionNode => definition.kind === Kind.OPERATION_DEFINITION)
    .map((operation) => operationCost(schema, operation, (name) => fragments.get(name), costOptions));
}

const cost = (query: string) => costs(query)[0];

/** `depth` levels of fragments, each spreading the one below twice, on `type`; F0 is `leaf`. */
function doublingFragments(depth: number, type: string, leaf: string): string {
  let fragments = `fragment F0 on ${type} { ${leaf} }\n`;
  for (let level = 1; level <= depth; level++) fragments += `fragment F${level} on ${type} { ...F${level - 1} ...F${level - 1} }\n`;
  return fragments;
}

describe('operationCost', () => {
  it('counts every field once, leaves and objects alike', () => {
    expect(cost('{ __typename }')).toBe(1);
    expect(cost('{ code(id: "x") { id ref label } }')).toBe(4);
    expect(cost('{ a: code(id: "x") { id } b: code(id: "y") { id } }')).toBe(4);
  });

  it('multiplies the selection of a field by its literal `first`', () => {
    expect(cost('{ codes(first: 5) { totalCount } }')).toBe(1 + 5 * 1);
    expect(cost('{ scans(first: 7) { totalCount pageInfo { hasNextPage } } }')).toBe(1 + 7 * (1 + 2));
  });

  it("uses the schema's default (20) when `first` is omitted or null", () => {
    expect(cost('{ codes { totalCount } }')).toBe(1 + 20);
    expect(cost('{ codes(first: null) { totalCount } }')).toBe(1 + 20);
    expect(cost('{ code(id: "x") { scans { totalCount } } }')).toBe(1 + 1 + 20);
  });

  it('counts a `first` given by a variable as the largest page, whatever its default', () => {
    expect(cost('query ($n: Int) { codes(first: $n) { totalCount } }')).toBe(1 + 100);
    expect(cost('query ($n: Int = 1) { codes(first: $n) { totalCount } }')).toBe(1 + 100);
  });

  it('keeps `first` within 1..maxPageSize (the resolver refuses the rest)', () => {
    expect(cost('{ codes(first: 1000000) { totalCount } }')).toBe(1 + 100);
    expect(cost('{ codes(first: 0) { totalCount } }')).toBe(1 + 1);
    expect(cost('{ codes(first: -5) { totalCount } }')).toBe(1 + 1);
  });

  it('multiplies nested lists: a connection inside a connection costs the product of their pages', () => {
    // edges is the page of its connection: counted once, not once more per item.
    const scans = 1 + 10 * (1 + (1 + 1)); // scans(first: 10) { edges { node { id } } }
    const codes = 1 + 10 * (1 + (1 + scans)); // codes(first: 10) { edges { node { <scans> } } }
    expect(cost('{ codes(first: 10) { edges { node { scans(first: 10) { edges { node { id } } } } } } }')).toBe(codes);
  });

  it("costs the finding's query (scans(first: 100) three deep) in the millions", () => {
    const query =
      '{ code(id: "x") { scans(first: 100) { edges { node { code { scans(first: 100) { edges { node { code {' +
      ' scans(first: 100) { edges { node { code { id } } } } } } } } } } } } } }';
    const level3 = 1 + 100 * (1 + (1 + (1 + 1))); // scans { edges { node { code { id } } } }
    const level2 = 1 + 100 * (1 + (1 + (1 + level3)));
    const level1 = 1 + 100 * (1 + (1 + (1 + level2)));
    expect(cost(query)).toBe(1 + level1);
    expect(cost(query)).toBeGreaterThan(4_000_000);
  });

  it('counts introspection lists as unpagedListSize items each, and the lists of a connection once', () => {
    expect(cost('{ __schema { types { name } } }')).toBe(1 + (1 + 10 * 1));
    expect(cost('{ __schema { types { name fields { name } } } }')).toBe(1 + (1 + 10 * (1 + (1 + 10 * 1))));
    expect(costs('{ __schema { types { name } } }', { maxPageSize: 100, unpagedListSize: 3 })[0]).toBe(1 + (1 + 3 * 1));
  });

  it('counts a fragment once per spread, inline fragments as their fields', () => {
    const viaFragments = cost(
      '{ codes(first: 2) { ...Page } } fragment Page on CodeConnection { totalCount ...Info ...Info } fragment Info on CodeConnection { pageInfo { hasNextPage } }',
    );
    expect(viaFragments).toBe(1 + 2 * (1 + 2 + 2));
    expect(cost('{ codes(first: 2) { ... on CodeConnection { totalCount } ... { pageInfo { endCursor } } } }')).toBe(1 + 2 * (1 + 2));
  });

  it('counts 2^30 for 30 levels of fragments each spreading the previous twice, without walking 2^30 spreads', () => {
    expect(cost(`{ ...F30 } ${doublingFragments(30, 'Query', '__typename')}`)).toBe(2 ** 30);
    expect(cost(`{ __schema { ...F30 } } ${doublingFragments(30, '__Schema', '__typename')}`)).toBe(1 + 2 ** 30);
  });

  it('ends on fragment cycles and ignores what other rules refuse (unknown fields, types, fragments)', () => {
    expect(cost('{ ...A } fragment A on Query { __typename ...B } fragment B on Query { ...A }')).toBe(1);
    expect(cost('{ nothing { at { all } } ...Missing ... on Nowhere { x } }')).toBe(1 + 0 + 1);
    expect(cost('{ code(id: "x") { notAField { deeper } } }')).toBe(1 + 1);
  });

  it('prices subscriptions and mutations from their own root types', () => {
    expect(cost('subscription { scanned { id code { scans(first: 3) { totalCount } } } }')).toBe(1 + (1 + (1 + (1 + 3 * 1))));
    expect(cost('mutation { generateCode(input: {}) { id scans { totalCount } } }')).toBe(1 + (1 + (1 + 20)));
  });
});

describe('queryCostRule', () => {
  const ruleUpTo = (maxCost: number) => queryCostRule({ maxCost, maxPageSize: 100, unpagedListSize: 10 });
  // 1 + 100 × (totalCount + pageInfo { 2 } + edges { cursor }) = 601
  const page = 'codes(first: 100) { totalCount pageInfo { hasNextPage endCursor } edges { cursor } }';

  it('accepts an operation at the limit and refuses one above, naming the limit and the cost', () => {
    expect(validate(schema, parse(`{ ${page} }`), [ruleUpTo(601)])).toEqual([]);
    const errors = validate(schema, parse(`query Big { ${page} __typename }`), [ruleUpTo(601)]);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/^Operation cost limit of 601 exceeded, found 602: /);
    expect(errors[0].extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 'cost' });
    expect(errors[0].locations).toEqual([{ line: 1, column: 1 }]);
  });

  it('checks each operation of a document on its own', () => {
    const text =
      'query Small { codes(first: 10) { totalCount } } query Large { codes(first: 100) { edges { node { scans(first: 100) { totalCount } } } } }';
    const errors = validate(schema, parse(text), [ruleUpTo(1_000)]);
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/found 10,301:/);
    expect(errors[0].locations).toEqual([{ line: 1, column: text.indexOf('query Large') + 1 }]);
  });

  it('says "more" when the cost is beyond any number', () => {
    const errors = validate(schema, parse(`{ ...F1100 } ${doublingFragments(1100, 'Query', '__typename')}`), [ruleUpTo(1_000)]);
    expect(errors[0].message).toMatch(/exceeded, found more: /);
  });
});
