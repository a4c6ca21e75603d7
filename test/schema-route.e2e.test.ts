import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateApiKeyDocument } from './generated/graphql';
import { startTestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';

const COMMITTED = readFileSync(join(__dirname, '..', 'schema', 'schema.graphql'), 'utf8');

describe('GET /schema.graphql', () => {
  it('serves the schema as committed, revalidated by ETag; behind a key once there is one', async () => {
    const gateway = await startTestGateway('sqlite', { CORS_ORIGINS: 'https://app.example' });
    const open = await fetch(`${gateway.url}/schema.graphql`, { headers: { origin: 'https://app.example' } });
    expect(open.status).toBe(200);
    expect(open.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(open.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(await open.text()).toBe(COMMITTED);
    const etag = open.headers.get('etag') as string;
    expect((await fetch(`${gateway.url}/schema.graphql`, { headers: { 'if-none-match': etag } })).status).toBe(304);

    const { key } = (await executeOk(gateway.url, CreateApiKeyDocument, { input: { name: 'codegen', role: 'VIEWER' } })).createApiKey;
    expect((await fetch(`${gateway.url}/schema.graphql`)).status).toBe(401);
    expect((await fetch(`${gateway.url}/schema.graphql`, { headers: { authorization: 'Bearer mcg_wrong' } })).status).toBe(401);
    const keyed = await fetch(`${gateway.url}/schema.graphql`, { headers: { authorization: `Bearer ${key}` } });
    expect(keyed.status).toBe(200);
    expect(await keyed.text()).toBe(COMMITTED);
  });

  it('is not served when introspection is off', async () => {
    const gateway = await startTestGateway('sqlite', { GRAPHQL_INTROSPECTION: 'false' });
    expect((await fetch(`${gateway.url}/schema.graphql`)).status).toBe(404);
  });
});
