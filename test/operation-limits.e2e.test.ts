import { getIntrospectionQuery, type GraphQLFormattedError } from 'graphql';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { TestSubscriber } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

/**
 * The findings of issue 8 about GraphQL operations, each sent to a real gateway over HTTP
 * and over graphql-ws: refused before anything runs, with GRAPHQL_VALIDATION_FAILED and the
 * limit named in `extensions.limit`, while the gateway keeps answering.
 */

interface Answer {
  status: number;
  body: { data?: Record<string, unknown> | null; errors?: GraphQLFormattedError[] };
}

async function post(gateway: TestGateway, query: string, variables: Record<string, unknown> = {}): Promise<Answer> {
  const response = await fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Answer['body'] };
}

/** The request is refused before execution: 400, no data, and the limits its errors name. */
async function refusedLimits(gateway: TestGateway, query: string, variables: Record<string, unknown> = {}): Promise<unknown[]> {
  const { status, body } = await post(gateway, query, variables);
  expect(status).toBe(400);
  expect(body.data).toBeUndefined();
  expect(body.errors?.length).toBeGreaterThan(0);
  for (const error of body.errors ?? []) expect(error.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  return (body.errors ?? []).map((error) => error.extensions?.limit);
}

async function expectHealthy(gateway: TestGateway): Promise<void> {
  expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
}

/** What an operation sent over graphql-ws first gets: its data, or its errors. */
async function overWebSocket(gateway: TestGateway, query: string, variables: Record<string, unknown> = {}) {
  const subscriber = TestSubscriber.open<Record<string, unknown>>(gateway.url, query, variables);
  try {
    await subscriber.waitFor((s) => s.errors.length > 0 || s.events.length > 0, 10_000, 'an answer');
    return { data: subscriber.events[0], errors: (subscriber.errors as (GraphQLFormattedError | GraphQLFormattedError[])[]).flat() };
  } finally {
    await subscriber.close();
  }
}

/** Levels of scans(first: 100) through each scan's code: `levels` of them, the finding had 3. */
function nestedScans(codeId: string, levels: number): string {
  let selection = 'id';
  for (let level = 0; level < levels; level++) selection = `scans(first: 100) { edges { node { code { ${selection} } } } }`;
  return `{ code(id: "${codeId}") { ${selection} } }`;
}

/** `levels` fragments on `type`, each spreading the previous twice; F0 is `leaf`. */
function doublingFragments(levels: number, type: string, leaf: string): string {
  let fragments = `fragment F0 on ${type} { ${leaf} }\n`;
  for (let level = 1; level <= levels; level++) fragments += `fragment F${level} on ${type} { ...F${level - 1} ...F${level - 1} }\n`;
  return fragments;
}

const DASHBOARD = `query Dashboard {
  codes(first: 100, orderBy: SCAN_COUNT_DESC) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      node {
        ref
        scanCount
        scans(first: 100) {
          totalCount
          pageInfo { hasNextPage }
          edges { node { occurredAt code { id } } }
        }
      }
    }
  }
}`;

describe('GraphQL operation limits', () => {
  let gateway: TestGateway;
  let codeId: string;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
    // The finding's setting: one code with 100 scans.
    const generated = await post(gateway, 'mutation { generateCode(input: { data: { ref: "limits" }, imageSize: 100 }) { id } }');
    codeId = (generated.body.data?.generateCode as { id: string }).id;
    expect(
      (
        await postScans(
          gateway.url,
          Array.from({ length: 100 }, () => scanOf(TEST_PAGE_ID, { ref: 'limits' })),
        )
      ).status,
    ).toBe(200);
  });

  describe('over HTTP', () => {
    it('refuses scans(first: 100) nested three deep through code (105 s of CPU before) by its cost and depth', async () => {
      expect(await refusedLimits(gateway, nestedScans(codeId, 3))).toEqual(expect.arrayContaining(['depth', 'cost']));
      await expectHealthy(gateway);
    });

    it('refuses `{ __typename × 90,000 }` (990 KB, quadratic to validate) while parsing, at the token limit', async () => {
      const query = `{${' __typename'.repeat(90_000)}}`;
      expect(query.length).toBeGreaterThan(980_000);
      const { status, body } = await post(gateway, query);
      expect(status).toBe(400);
      expect(body.errors).toEqual([
        {
          message: 'Operation too large: more than 1,000 tokens (names, punctuators, values). Parsing aborted.',
          locations: [{ line: 1, column: 2 + 999 * 11 + 1 }],
          extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'tokens' },
        },
      ]);
      await expectHealthy(gateway);
    });

    it('refuses 16 levels of fragments each spreading the previous twice', async () => {
      const onQuery = `{ ...F16 } ${doublingFragments(16, 'Query', 'codes(first: 100) { edges { node { scans(first: 100) { totalCount } } } }')}`;
      expect(await refusedLimits(gateway, onQuery)).toEqual(['cost']);
      // Each level one level of scans deeper, and the previous level beside it.
      let throughScans = 'fragment F0 on Code { id }\n';
      for (let level = 1; level <= 16; level++) {
        throughScans += `fragment F${level} on Code { scans(first: 100) { edges { node { code { ...F${level - 1} } } } } ...F${level - 1} }\n`;
      }
      expect(await refusedLimits(gateway, `{ code(id: "${codeId}") { ...F16 } } ${throughScans}`)).toEqual(['depth', 'cost']);
      await expectHealthy(gateway);
    });

    it('refuses 24 levels of doubling fragments inside __schema (exponential in graphql 16 validation) by their cost', async () => {
      const query = `{ __schema { ...F24 } } ${doublingFragments(24, '__Schema', '__typename')}`;
      expect(await refusedLimits(gateway, query)).toEqual(['cost']);
      await expectHealthy(gateway);
    });

    it('refuses 1,000 aliases of codes(first: 100) with nested scans(first: 100), and 101 cheap aliases, and 21 costly ones', async () => {
      const alias = (index: number) => `a${index}: codes(first: 100) { edges { node { scans(first: 100) { totalCount } } } }`;
      const aliases = (count: number) => `{ ${Array.from({ length: count }, (_, index) => alias(index)).join(' ')} }`;
      expect(await refusedLimits(gateway, aliases(1_000))).toEqual(['tokens']);
      expect(await refusedLimits(gateway, aliases(21))).toEqual(['cost']);
      const cheap = `{ ${Array.from({ length: 101 }, (_, index) => `c${index}: codes { totalCount }`).join(' ')} }`;
      expect(await refusedLimits(gateway, cheap)).toEqual(['aliases']);
      await expectHealthy(gateway);
    });

    it('refuses an operation deeper than 10, and one with more than 50 directives', async () => {
      expect(
        await refusedLimits(
          gateway,
          `{ code(id: "${codeId}") { scans { edges { node { code { scans { edges { node { code { scans { totalCount } } } } } } } } } } }`,
        ),
      ).toEqual(['depth']);
      expect(await refusedLimits(gateway, `{ ${'__typename @include(if: true) '.repeat(51)}}`)).toEqual(['directives']);
    });

    it('counts a `first` given by a variable as the largest page: three nested lists are refused even for first: 1', async () => {
      const query = `query ($n: Int) { codes(first: $n) { edges { node { scans(first: $n) { edges { node { code { scans(first: $n) { totalCount } } } } } } } } }`;
      expect(await refusedLimits(gateway, query, { n: 1 })).toEqual(['cost']);
    });

    it('refuses a GET as it refuses a POST', async () => {
      const url = `${gateway.url}/graphql?query=${encodeURIComponent(nestedScans(codeId, 3))}`;
      const response = await fetch(url, { headers: { 'apollo-require-preflight': 'true' } });
      expect(response.status).toBe(400);
      const body = (await response.json()) as Answer['body'];
      expect(body.errors?.map((error) => error.extensions?.limit)).toEqual(expect.arrayContaining(['cost']));
    });

    it('answers a dashboard query of depth 8 (codes → edges → node → scans → edges → node → code → id) of 100 × 100', async () => {
      const { status, body } = await post(gateway, DASHBOARD);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      const codes = body.data?.codes as {
        totalCount: number;
        edges: { node: { ref: string; scanCount: number; scans: { totalCount: number; edges: { node: { code: { id: string } } }[] } } }[];
      };
      const code = codes.edges.find((edge) => edge.node.ref === 'limits')?.node;
      expect(code?.scanCount).toBe(100);
      expect(code?.scans.totalCount).toBe(100);
      expect(code?.scans.edges.map((edge) => edge.node.code.id)).toEqual(Array.from({ length: 100 }, () => codeId));
    });

    it("answers GraphiQL's and code generators' introspection query, deeper than the depth limit", async () => {
      const query = getIntrospectionQuery({
        descriptions: true,
        specifiedByUrl: true,
        directiveIsRepeatable: true,
        schemaDescription: true,
        inputValueDeprecation: true,
        oneOf: true,
      });
      const { status, body } = await post(gateway, query);
      expect(body.errors).toBeUndefined();
      expect(status).toBe(200);
      expect((body.data?.__schema as { queryType: { name: string } }).queryType.name).toBe('Query');
    });

    it('never runs a refused mutation: nothing is stored', async () => {
      const codes = await countRows(gateway, 'code');
      const images = await countRows(gateway, 'code_image');
      let selection = 'totalCount';
      for (let level = 0; level < 3; level++) selection = `scans(first: 100) { edges { node { code { ${selection} } } } }`;
      const mutation = `mutation { generateCode(input: { data: { ref: "refused" }, imageSize: 100 }) { id ${selection} } }`;
      expect(await refusedLimits(gateway, mutation)).toEqual(expect.arrayContaining(['cost']));
      expect(await countRows(gateway, 'code')).toBe(codes);
      expect(await countRows(gateway, 'code_image')).toBe(images);
      const { body } = await post(gateway, '{ codes(ref: "refused") { totalCount } }');
      expect(body.data).toEqual({ codes: { totalCount: 0 } });
    });

    it('keeps suggestions while introspection is on', async () => {
      const { status, body } = await post(gateway, '{ cod(id: "x") { id } }');
      expect(status).toBe(400);
      expect(body.errors?.[0].message).toBe('Cannot query field "cod" on type "Query". Did you mean "code" or "codes"?');
    });
  });

  describe('over graphql-ws', () => {
    it('refuses the nested scans(first: 100) query, sent as a query over the socket', async () => {
      const { data, errors } = await overWebSocket(gateway, nestedScans(codeId, 3));
      expect(data).toBeUndefined();
      expect(errors.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual(
        expect.arrayContaining([['GRAPHQL_VALIDATION_FAILED', 'cost']]),
      );
      await expectHealthy(gateway);
    });

    it('refuses a subscription too deep, and one too costly', async () => {
      const deep = 'subscription { scanned { code { scans { edges { node { code { scans { edges { node { code { id } } } } } } } } } } }';
      expect((await overWebSocket(gateway, deep)).errors.map((error) => error.extensions?.limit)).toEqual(['depth']);
      // Per scan: 100 × 100 scans of 25 fields each, about 270,000.
      const fields = Array.from({ length: 25 }, (_, index) => `f${index}: occurredAt`).join(' ');
      const costly = `subscription { scanned { code { scans(first: 100) { edges { node { code { scans(first: 100) { edges { node { ${fields} } } } } } } } } } }`;
      expect((await overWebSocket(gateway, costly)).errors.map((error) => error.extensions?.limit)).toEqual(['cost']);
    });

    it('refuses a document past the token limit (55 KB of __typename)', async () => {
      const { errors } = await overWebSocket(gateway, `{${' __typename'.repeat(5_000)}}`);
      expect(errors.map((error) => [error.extensions?.code, error.extensions?.limit])).toEqual([['GRAPHQL_VALIDATION_FAILED', 'tokens']]);
    });

    it('refuses the doubling fragments inside __schema, and answers the introspection query', async () => {
      const bomb = await overWebSocket(gateway, `{ __schema { ...F24 } } ${doublingFragments(24, '__Schema', '__typename')}`);
      expect(bomb.errors.map((error) => error.extensions?.limit)).toEqual(['cost']);
      const introspection = await overWebSocket(gateway, getIntrospectionQuery({ inputValueDeprecation: true, schemaDescription: true }));
      expect(introspection.errors).toEqual([]);
      expect((introspection.data?.__schema as { queryType: { name: string } }).queryType.name).toBe('Query');
    });

    it('answers the dashboard query over the socket too', async () => {
      const { data, errors } = await overWebSocket(gateway, DASHBOARD);
      expect(errors).toEqual([]);
      expect((data?.codes as { totalCount: number }).totalCount).toBeGreaterThanOrEqual(1);
    });
  });

  describe('with introspection off', () => {
    let closed: TestGateway;

    beforeAll(async () => {
      closed = await startTestGateway('sqlite', { GRAPHQL_INTROSPECTION: 'false' });
    });

    it('suggests no field, argument, type or enum value over HTTP', async () => {
      const cases: [string, string][] = [
        ['{ cod(id: "x") { id } }', 'Cannot query field "cod" on type "Query".'],
        ['{ codes(frist: 1) { totalCount } }', 'Unknown argument "frist" on field "Query.codes".'],
        ['query ($o: CodeOrderB) { codes(orderBy: $o) { totalCount } }', 'Unknown type "CodeOrderB".'],
        ['{ codes(orderBy: SCAN_COUNT) { totalCount } }', 'Value "SCAN_COUNT" does not exist in "CodeOrderBy" enum.'],
      ];
      for (const [query, message] of cases) {
        const { status, body } = await post(closed, query);
        expect(status).toBe(400);
        expect(body.errors?.map((error) => error.message)).toContain(message);
        expect(JSON.stringify(body)).not.toMatch(/Did you mean/);
      }
    });

    it('suggests nothing in the value of a variable either', async () => {
      const { body } = await post(closed, 'query ($o: CodeOrderBy) { codes(orderBy: $o) { totalCount } }', { o: 'SCAN_COUNT' });
      expect(body.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(body)).not.toMatch(/Did you mean/);
    });

    it('suggests nothing over graphql-ws', async () => {
      const { errors } = await overWebSocket(closed, 'subscription { scanned { id kin } }');
      expect(errors.map((error) => error.message)).toEqual(['Cannot query field "kin" on type "Scan".']);
      const variable = await overWebSocket(closed, 'subscription ($r: Int) { scanned(ref: $r) { id } }');
      expect(JSON.stringify(variable.errors)).not.toMatch(/Did you mean/);
    });

    it('still applies the limits (the same module on both transports)', async () => {
      expect(await refusedLimits(closed, nestedScans('x', 3))).toEqual(expect.arrayContaining(['cost']));
    });
  });
});
