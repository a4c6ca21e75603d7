import { print } from 'graphql';
import WebSocket from 'ws';
import { CodesDocument, GenerateCodeDocument, ScannedDocument } from './generated/graphql';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk } from './support/graphql-client';
import { TestSubscriber, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

const KEY = 'admin-key-for-tests';

describe('API keys (ADMIN_API_KEY set)', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { ADMIN_API_KEY: KEY });
  });

  it.each([
    ['no Authorization header', {}],
    ['an unknown key', { authorization: 'Bearer not-the-key' }],
    ['the key without the Bearer scheme', { authorization: KEY }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('refuses %s with 401 UNAUTHENTICATED and runs nothing', async (_name, headers) => {
    const result = await execute(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'refused' } } }, headers);
    expect(result.status).toBe(401);
    expect(result.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
    const listed = await executeOk(gateway.url, CodesDocument, { ref: 'refused' }, { authorization: `Bearer ${KEY}` });
    expect(listed.codes.totalCount).toBe(0);
  });

  it('serves a request with the key', async () => {
    const result = await executeOk(gateway.url, CodesDocument, {}, { authorization: `bearer ${KEY}` });
    expect(result.codes.totalCount).toBe(0);
  });

  it('closes a WebSocket without the key with 4403', async () => {
    for (const payload of [{}, { authorization: 'Bearer wrong' }]) {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      await new Promise((resolve) => socket.once('open', resolve));
      socket.send(JSON.stringify({ type: 'connection_init', payload }));
      const code = await new Promise<number>((resolve) => socket.once('close', (closeCode: number) => resolve(closeCode)));
      expect(code).toBe(4403);
    }
  });

  it('delivers subscriptions to a WebSocket that presents the key', async () => {
    const subscriber = TestSubscriber.open(
      gateway.url,
      print(ScannedDocument),
      { pageId: TEST_PAGE_ID },
      { authorization: `Bearer ${KEY}` },
    );
    await waitForSubscribers(gateway, 1);
    expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'keyed' })])).status).toBe(200);
    await subscriber.waitForEvents(1);
    await subscriber.close();
  });

  it('leaves the health routes, the webhook and the image URLs public', async () => {
    const code = (await executeOk(gateway.url, GenerateCodeDocument, { input: { imageSize: 100 } }, { authorization: `Bearer ${KEY}` }))
      .generateCode;
    expect((await fetch(code.imageUrl)).status).toBe(200);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(200);
  });
});
