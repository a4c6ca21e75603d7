import type { GraphQLFormattedError } from 'graphql';
import { startTestGateway, type TestGateway } from './support/gateway';
import { TestSubscriber } from './support/subscriptions';

describe('errors over WebSocket', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  /** The first error a subscription gets: graphql-ws reports some in an `error` message (a list), some in a `next`. */
  const firstError = async (query: string, variables: Record<string, unknown> = {}): Promise<GraphQLFormattedError> => {
    const subscriber = TestSubscriber.open(gateway.url, query, variables);
    try {
      await subscriber.waitFor((s) => s.errors.length > 0, 5000, 'an error');
      return (subscriber.errors as (GraphQLFormattedError | GraphQLFormattedError[])[]).flat()[0];
    } finally {
      await subscriber.close();
    }
  };

  it('reports a syntax error as GRAPHQL_PARSE_FAILED, the same text twice (cached) alike', async () => {
    for (let attempt = 0; attempt < 2; attempt++) {
      const error = await firstError('subscription { scanned { ');
      expect(error.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
      expect(error.message).toMatch(/Syntax Error/);
    }
  });

  it('reports an unknown field as GRAPHQL_VALIDATION_FAILED', async () => {
    const error = await firstError('subscription { scanned { id notAField } }');
    expect(error.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(error.message).toMatch(/notAField/);
  });

  it('reports a bad variable as BAD_USER_INPUT naming it', async () => {
    const error = await firstError('subscription ($ref: String) { scanned(ref: $ref) { id } }', { ref: 12 });
    expect(error.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'ref' });
  });

  it('reports an unknown code as NOT_FOUND naming codeId', async () => {
    const error = await firstError('subscription { scanned(codeId: "00000000-0000-0000-0000-000000000000") { id } }');
    expect(error.extensions).toMatchObject({ code: 'NOT_FOUND', field: 'codeId' });
  });

  it('refuses introspection when GRAPHQL_INTROSPECTION=false, as over HTTP', async () => {
    const closed = await startTestGateway('sqlite', { GRAPHQL_INTROSPECTION: 'false' });
    try {
      const subscriber = TestSubscriber.open(closed.url, '{ __schema { queryType { name } } }');
      await subscriber.waitFor((s) => s.errors.length > 0, 5000, 'an error');
      const [error] = (subscriber.errors as (GraphQLFormattedError | GraphQLFormattedError[])[]).flat();
      expect(error.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      expect(error.message).toMatch(/introspection/i);
      await subscriber.close();
    } finally {
      await closed.stop();
    }
  });
});
