import type { GraphQLFormattedError } from 'graphql';
import type { Gateway } from '../src/app/gateway';
import { countRows, startTestGateway } from './support/gateway';

interface RawResponse {
  status: number;
  contentType: string | null;
  text: string;
  body: { data?: Record<string, unknown> | null; errors?: GraphQLFormattedError[] } | undefined;
}

async function raw(response: Response): Promise<RawResponse> {
  const text = await response.text();
  let body: RawResponse['body'];
  try {
    body = JSON.parse(text) as RawResponse['body'];
  } catch {
    body = undefined;
  }
  return { status: response.status, contentType: response.headers.get('content-type'), text, body };
}

function post(gateway: Gateway, payload: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return fetch(`${gateway.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(payload),
  }).then(raw);
}

function get(gateway: Gateway, query: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return fetch(`${gateway.url}/graphql?${new URLSearchParams({ query })}`, { headers }).then(raw);
}

/** Takes the database away; the errors that follow are expected, so the gateway's error log stays quiet meanwhile. */
async function loseDatabase(gateway: Gateway): Promise<() => void> {
  await gateway.db.dataSource.destroy();
  const level = gateway.logger.level;
  gateway.logger.level = 'silent';
  return () => {
    gateway.logger.level = level;
  };
}

async function storedRows(gateway: Gateway): Promise<number[]> {
  return [await countRows(gateway, 'code'), await countRows(gateway, 'code_image')];
}

const GENERATE = 'mutation { generateCode(input: { data: { ref: "csrf-victim" }, imageSize: 100 }) { id } }';
const INTROSPECTION = '{ __schema { queryType { name } types { name } } }';

/** Each test gets a gateway of its own configuration on a fresh SQLite file. */
function withGateway(env: Record<string, string> = {}): { current: () => Gateway } {
  let gateway: Gateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', env);
  });
  return { current: () => gateway };
}

describe('GraphQL over HTTP', () => {
  const { current } = withGateway();

  describe('POST', () => {
    it('answers application/graphql-response+json to a client that accepts it', async () => {
      const response = await post(current(), { query: '{ codes { totalCount } }' }, { accept: 'application/graphql-response+json' });
      expect(response.status).toBe(200);
      expect(response.contentType).toMatch(/^application\/graphql-response\+json\b/);
      expect(response.body).toEqual({ data: { codes: { totalCount: 0 } } });
    });

    it('answers application/json to a client that accepts only that', async () => {
      const response = await post(current(), { query: '{ codes { totalCount } }' }, { accept: 'application/json' });
      expect(response.status).toBe(200);
      expect(response.contentType).toMatch(/^application\/json\b/);
      expect(response.body).toEqual({ data: { codes: { totalCount: 0 } } });
    });

    it('prefers application/graphql-response+json when both are accepted in that order', async () => {
      const response = await post(
        current(),
        { query: '{ codes { totalCount } }' },
        { accept: 'application/graphql-response+json, application/json;q=0.9' },
      );
      expect(response.contentType).toMatch(/^application\/graphql-response\+json\b/);
    });

    it('answers 400 to an invalid document with application/graphql-response+json', async () => {
      const response = await post(current(), { query: '{ nope }' }, { accept: 'application/graphql-response+json' });
      expect(response.status).toBe(400);
      expect(response.body?.data).toBeUndefined();
      expect(response.body?.errors?.[0].extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    });

    it('answers 400 to a syntax error in the document and to a body without a query', async () => {
      const syntax = await post(current(), { query: '{ codes { ' }, { accept: 'application/graphql-response+json' });
      expect(syntax.status).toBe(400);
      expect(syntax.body?.errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      const empty = await post(current(), {});
      expect(empty.status).toBe(400);
    });

    it.each([
      ['cut-off JSON', '{"query": "{ codes { totalCount } }"', 'application/json', 400],
      ['a body over 2 MiB', JSON.stringify({ query: `{ codes { totalCount } } #${'x'.repeat(2_200_000)}` }), 'application/json', 413],
      ['an unsupported charset', '{"query": "{ codes { totalCount } }"}', 'application/json; charset=latin9', 415],
    ])('answers %s with its 4xx status and a GraphQL error, not a 500', async (_name, body, contentType, status) => {
      const response = await raw(
        await fetch(`${current().url}/graphql`, { method: 'POST', headers: { 'content-type': contentType }, body }),
      );
      expect(response.status).toBe(status);
      expect(JSON.parse(response.text).errors[0].extensions.code).toBe('BAD_REQUEST');
    });

    it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x'])(
      'refuses a mutation sent as %s (a simple request a foreign page could make), storing nothing',
      async (contentType) => {
        const gateway = current();
        const before = await storedRows(gateway);
        const response = await raw(
          await fetch(`${gateway.url}/graphql`, {
            method: 'POST',
            headers: { 'content-type': contentType },
            body: JSON.stringify({ query: GENERATE }),
          }),
        );
        expect(response.status).toBe(400);
        expect(response.text).not.toContain('"generateCode"');
        expect(await storedRows(gateway)).toEqual(before);
      },
    );
  });

  describe('GET', () => {
    it('refuses a query without a preflight header (CSRF prevention)', async () => {
      const response = await get(current(), '{codes{totalCount}}');
      expect(response.status).toBe(400);
      expect(response.text).toMatch(/Cross-Site Request Forgery/i);
      expect(response.text).not.toContain('totalCount');
    });

    it('answers a query that carries apollo-require-preflight', async () => {
      const response = await get(current(), '{codes{totalCount}}', { 'apollo-require-preflight': 'true' });
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ data: { codes: { totalCount: 0 } } });
    });

    it('answers a query that carries a JSON content type, which browsers preflight too', async () => {
      const response = await get(current(), '{codes{totalCount}}', { 'content-type': 'application/json' });
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ data: { codes: { totalCount: 0 } } });
    });

    it('refuses a mutation, even with a preflight header, and stores nothing', async () => {
      const gateway = current();
      const before = await storedRows(gateway);
      const response = await get(gateway, GENERATE, { 'apollo-require-preflight': 'true' });
      expect(response.status).toBe(405);
      expect(response.body?.data ?? undefined).toBeUndefined();
      expect(await storedRows(gateway)).toEqual(before);
    });
  });

  describe('introspection', () => {
    it('is on by default', async () => {
      const response = await post(current(), { query: INTROSPECTION });
      expect(response.status).toBe(200);
      expect(response.body?.errors).toBeUndefined();
      const schema = response.body?.data?.__schema as { queryType: { name: string }; types: { name: string }[] };
      expect(schema.queryType.name).toBe('Query');
      expect(schema.types.map((type) => type.name)).toEqual(expect.arrayContaining(['Code', 'CodeConnection', 'GenerateCodeInput']));
    });
  });
});

describe('GRAPHQL_INTROSPECTION=false', () => {
  const { current } = withGateway({ GRAPHQL_INTROSPECTION: 'false' });

  it.each([INTROSPECTION, '{ __type(name: "Code") { name fields { name } } }'])('refuses %s', async (query) => {
    const response = await post(current(), { query }, { accept: 'application/graphql-response+json' });
    expect(response.status).toBe(400);
    expect(response.body?.data).toBeUndefined();
    expect(response.body?.errors?.[0].message).toMatch(/introspection/i);
    expect(response.text).not.toContain('GenerateCodeInput');
  });

  it('still answers ordinary queries, __typename included', async () => {
    const response = await post(current(), { query: '{ __typename codes { totalCount } }' });
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ data: { __typename: 'Query', codes: { totalCount: 0 } } });
  });
});

describe('NODE_ENV=production', () => {
  const { current } = withGateway({ NODE_ENV: 'production' });

  it('keeps introspection on (exploration and codegen need it)', async () => {
    const response = await post(current(), { query: INTROSPECTION });
    expect(response.status).toBe(200);
    expect(response.body?.errors).toBeUndefined();
  });

  it('keeps the message and code of a user error', async () => {
    const response = await post(current(), { query: 'mutation { generateCode(input: { imageSize: 99 }) { id } }' });
    expect(response.body?.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'imageSize' });
    expect(response.body?.errors?.[0].message).toMatch(/imageSize/);
  });

  // Last in this block: it takes the database away.
  it('masks an internal error: no message, no stack, only INTERNAL_SERVER_ERROR', async () => {
    const gateway = current();
    const restoreLog = await loseDatabase(gateway);
    const response = await post(gateway, { query: '{ codes { totalCount } }' }).finally(restoreLog);
    expect(response.body?.errors).toHaveLength(1);
    const [error] = response.body?.errors ?? [];
    expect(error.message).toBe('Internal server error');
    expect(error.extensions).toEqual({ code: 'INTERNAL_SERVER_ERROR' });
    expect(response.text).not.toMatch(/typeorm|sqlite|DataSource|connection|stack|\.ts:/i);
  });
});

describe('outside production', () => {
  const { current } = withGateway();

  it('gives an internal error the INTERNAL_SERVER_ERROR code but no stack trace', async () => {
    const gateway = current();
    const restoreLog = await loseDatabase(gateway);
    const response = await post(gateway, { query: '{ codes { totalCount } }' }).finally(restoreLog);
    const [error] = response.body?.errors ?? [];
    expect(error.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(error.extensions?.stacktrace).toBeUndefined();
    expect(response.text).not.toMatch(/\.ts:\d+/);
  });
});
