/**
 * What operators rely on: /metrics and its guard, keep-alive behind a load balancer,
 * request ids and what the logs say (and never say), the webhook's JSON receipt.
 */
import { createHmac } from 'node:crypto';
import { request as httpRequest, Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { KEEP_ALIVE_TIMEOUT_MS, HEADERS_TIMEOUT_MS } from '../src/app/http-server';
import { GenerateCodeDocument } from './generated/graphql';
import { sample, scrape } from './support/metrics';
import { startTestGateway, TEST_PAGE_ID, TEST_VERIFY_TOKEN, type TestGateway } from './support/gateway';
import { FakeGraphApi } from './support/fake-graph-api';
import { execute, executeOk } from './support/graphql-client';
import { postRawWebhook, postScans, scanOf, TEST_APP_SECRET } from './support/webhook';
import { serializeLikeMeta, webhookBodyOf } from '../src/webhook/simulated-webhook';

describe('/metrics', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  it('is open on an open gateway and counts webhooks by status, scans stored and duplicates, ingest latency', async () => {
    const scan = scanOf(TEST_PAGE_ID, { ref: 'metrics' });
    expect((await postScans(gateway.url, [scan])).status).toBe(200);
    expect((await postScans(gateway.url, [scan])).status).toBe(200);
    expect((await postScans(gateway.url, [scan], 'wrong-secret')).status).toBe(401);

    const metrics = await scrape(gateway.url);
    expect(metrics.status).toBe(200);
    expect(metrics.type).toMatch(/^text\/plain/);
    expect(sample(metrics.text, 'gateway_webhook_requests_total{status="200"}')).toBe(2);
    expect(sample(metrics.text, 'gateway_webhook_requests_total{status="401"}')).toBe(1);
    expect(sample(metrics.text, 'gateway_scans_total{result="stored"}')).toBe(1);
    expect(sample(metrics.text, 'gateway_scans_total{result="duplicate"}')).toBe(1);
    expect(sample(metrics.text, 'gateway_ingest_duration_seconds_count')).toBe(2);
    expect(sample(metrics.text, 'gateway_subscribers')).toBe(0);
    expect(sample(metrics.text, 'gateway_subscribers_dropped_total')).toBe(0);
    // Node's own process metrics come along.
    expect(metrics.text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(metrics.text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
  });

  it('counts a body too large as 413', async () => {
    const huge = 'x'.repeat(4 * 1024 * 1024 + 1);
    expect((await postRawWebhook(gateway.url, huge)).status).toBe(413);
    expect(sample((await scrape(gateway.url)).text, 'gateway_webhook_requests_total{status="413"}')).toBe(1);
  });
});

describe('/metrics of Graph API calls', () => {
  let fake: FakeGraphApi;
  let gateway: TestGateway;
  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    gateway = await startTestGateway('sqlite', {
      CODE_PROVIDER: 'facebook',
      GRAPH_API_URL: fake.url,
      PAGE_ACCESS_TOKEN: 'metrics-page-token',
      GRAPH_API_MAX_ATTEMPTS: '3',
    });
  });
  afterAll(() => fake.stop());

  it('counts each call by outcome: transient (retried), success, refused', async () => {
    fake.enqueue({ kind: 'graphError', code: 2 }, { kind: 'success' });
    const generated = await execute(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'graph-metrics' }, imageSize: 100 } });
    expect(generated.errors).toBeUndefined();
    fake.enqueue({ kind: 'graphError', code: 190 });
    const refused = await execute(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'graph-refused' }, imageSize: 100 } });
    expect(refused.errors?.[0].extensions?.code).toBe('UPSTREAM_ERROR');

    const { text } = await scrape(gateway.url);
    expect(sample(text, 'gateway_graph_api_calls_total{outcome="transient"}')).toBe(1);
    expect(sample(text, 'gateway_graph_api_calls_total{outcome="success"}')).toBe(1);
    expect(sample(text, 'gateway_graph_api_calls_total{outcome="refused"}')).toBe(1);
  });
});

describe('/metrics with ADMIN_API_KEY and METRICS_TOKEN', () => {
  const ADMIN = 'admin-key-for-metrics';
  const TOKEN = 'metrics-token-for-prometheus';
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { ADMIN_API_KEY: ADMIN, METRICS_TOKEN: TOKEN });
  });

  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: 'Bearer not-the-token' }],
    ['the token without Bearer', { authorization: TOKEN }],
    ['a prefix of the token', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
  ])('refuses %s with 401 and shows nothing', async (_name, headers) => {
    const metrics = await scrape(gateway.url, headers as Record<string, string>);
    expect(metrics.status).toBe(401);
    expect(metrics.text).not.toContain('gateway_');
  });

  it.each([
    ['METRICS_TOKEN', TOKEN],
    ['ADMIN_API_KEY', ADMIN],
  ])('answers with %s', async (_name, key) => {
    const metrics = await scrape(gateway.url, { authorization: `Bearer ${key}` });
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('gateway_webhook_requests_total');
  });
});

describe('keep-alive behind a load balancer', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  it('keeps idle connections longer than the usual 60 s idle timeout of load balancers', () => {
    expect(KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(60_000);
    expect(gateway.httpServer.keepAliveTimeout).toBe(KEEP_ALIVE_TIMEOUT_MS);
    // Node requires the headers timeout to exceed the keep-alive timeout.
    expect(gateway.httpServer.headersTimeout).toBe(HEADERS_TIMEOUT_MS);
    expect(HEADERS_TIMEOUT_MS).toBeGreaterThan(KEEP_ALIVE_TIMEOUT_MS);
  });

  it("answers a POST on a connection left idle longer than Node's default 5 s keep-alive (no ECONNRESET)", async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const post = (body: string) =>
      new Promise<{ status: number; header: string | undefined; socket: unknown }>((resolve, reject) => {
        const request = httpRequest(
          `${gateway.url}/graphql`,
          { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
          (response) => {
            response.resume();
            response.on('end', () =>
              resolve({
                status: response.statusCode ?? 0,
                header: response.headers['keep-alive'] as string | undefined,
                socket: request.socket,
              }),
            );
          },
        );
        request.on('error', reject);
        request.end(body);
      });
    try {
      const query = JSON.stringify({ query: '{ __typename }' });
      const first = await post(query);
      expect(first.status).toBe(200);
      expect(first.header).toBe(`timeout=${KEEP_ALIVE_TIMEOUT_MS / 1000}`);
      // Idle for longer than Node's default keepAliveTimeout, which closed the socket under the client before.
      await sleep(5_500);
      const second = await post(query);
      expect(second.status).toBe(200);
      expect(second.socket).toBe(first.socket);
    } finally {
      agent.destroy();
    }
  }, 20_000);
});

describe('logs', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { LOG_LEVEL: 'info' });
  });

  const entriesSince = (count: number) => gateway.logs.entries().slice(count);

  it('logs a refused signature at warn with the reason and the request id, never the body or the signature', async () => {
    const before = gateway.logs.lines.length;
    const body = serializeLikeMeta(webhookBodyOf([scanOf(TEST_PAGE_ID, { ref: 'secret-ref-in-body', senderPsid: 'psid-never-logged' })]));
    const response = await fetch(`${gateway.url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`, 'x-request-id': 'trace-me-123' },
      body,
    });
    expect(response.status).toBe(401);
    const [entry, ...rest] = entriesSince(before);
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ level: 'warn', message: 'webhook refused', reason: 'signature mismatch', reqId: 'trace-me-123' });
    const logged = JSON.stringify(entry);
    expect(logged).not.toContain('secret-ref-in-body');
    expect(logged).not.toContain('psid-never-logged');
    expect(logged).not.toContain('0'.repeat(64));
  });

  it.each([
    ['no signature header', null, 'signature missing'],
    ['a SHA-1 style header', `sha1=${'a'.repeat(40)}`, 'signature malformed'],
  ])('logs %s with its reason', async (_name, signature, reason) => {
    const before = gateway.logs.lines.length;
    expect((await postRawWebhook(gateway.url, '{}', { signature })).status).toBe(401);
    expect(entriesSince(before)).toEqual([expect.objectContaining({ level: 'warn', message: 'webhook refused', reason })]);
  });

  it('logs a failed handshake at warn with the reason, never the token', async () => {
    const before = gateway.logs.lines.length;
    const response = await fetch(`${gateway.url}/webhook?hub.mode=subscribe&hub.verify_token=guessed-token-xyz&hub.challenge=42`);
    expect(response.status).toBe(403);
    const entries = entriesSince(before);
    expect(entries).toEqual([
      expect.objectContaining({ level: 'warn', message: 'webhook handshake refused', reason: expect.stringMatching(/verify_token/) }),
    ]);
    expect(JSON.stringify(entries)).not.toContain('guessed-token-xyz');
    expect(JSON.stringify(entries)).not.toContain(TEST_VERIFY_TOKEN);
  });

  it('gives every request its own id, or keeps a safe X-Request-Id, and never logs a stored webhook at info', async () => {
    const before = gateway.logs.lines.length;
    expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID)])).status).toBe(200);
    expect(entriesSince(before)).toEqual([]);

    for (const unsafe of ['has spaces in it', 'x'.repeat(101), 'quote"d']) {
      const mark = gateway.logs.lines.length;
      await fetch(`${gateway.url}/webhook`, { method: 'POST', headers: { 'x-request-id': unsafe }, body: '{}' });
      const [entry] = entriesSince(mark);
      expect(entry.reqId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('writes one line per stored webhook at debug, with its counts and no PSID', async () => {
    gateway.logger.level = 'debug';
    try {
      const before = gateway.logs.lines.length;
      const scan = scanOf(TEST_PAGE_ID, { ref: 'debug-line', senderPsid: 'psid-at-debug' });
      expect((await postScans(gateway.url, [scan, scan])).status).toBe(200);
      const stored = entriesSince(before).filter((entry) => entry.message === 'webhook stored');
      expect(stored).toEqual([expect.objectContaining({ level: 'debug', stored: 1, duplicates: 1, reqId: expect.any(String) })]);
      expect(gateway.logs.text).not.toContain('psid-at-debug');
    } finally {
      gateway.logger.level = 'info';
    }
  });

  it('redacts authorization, tokens and PSIDs by path whoever logs them', () => {
    const before = gateway.logs.lines.length;
    gateway.logger.warn({ authorization: 'Bearer k', nested: { accessToken: 't', psid: 'p' }, senderPsid: 'q' }, 'redaction check');
    // pino writes synchronously to the capture; the line is there already.
    const [entry] = entriesSince(before);
    expect(entry).toMatchObject({
      authorization: '[redacted]',
      nested: { accessToken: '[redacted]', psid: '[redacted]' },
      senderPsid: '[redacted]',
    });
  });
});

describe('the webhook receipt', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  });

  it('says per scan, in order, whether it was stored, to a client that accepts JSON', async () => {
    const repeated = scanOf(TEST_PAGE_ID, { ref: 'receipt' });
    expect((await postScans(gateway.url, [repeated])).status).toBe(200);
    const fresh = scanOf(TEST_PAGE_ID, { ref: 'receipt' });
    const body = serializeLikeMeta(webhookBodyOf([repeated, fresh, fresh]));
    const response = await fetch(`${gateway.url}/webhook`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'x-hub-signature-256': `sha256=${createHmac('sha256', TEST_APP_SECRET).update(body).digest('hex')}`,
      },
      body,
    });
    expect(response.status).toBe(200);
    const receipt = (await response.json()) as {
      result: string;
      stored: number;
      duplicates: number;
      scans: { id: string; stored: boolean }[];
    };
    expect(receipt).toMatchObject({ result: 'EVENT_RECEIVED', stored: 1, duplicates: 2, ignored: 0, malformed: 0 });
    expect(receipt.scans.map((scan) => scan.stored)).toEqual([false, true, false]);
    expect(receipt.scans[1].id).toBe(receipt.scans[2].id);
    expect(receipt.scans[0].id).not.toBe(receipt.scans[1].id);
  });

  it('answers EVENT_RECEIVED as plain text otherwise, as Meta expects', async () => {
    const answer = await postScans(gateway.url, [scanOf(TEST_PAGE_ID)]);
    expect(answer).toEqual({ status: 200, text: 'EVENT_RECEIVED' });
  });

  it('keeps a GraphQL request working beside it (the gateway is one server)', async () => {
    const { generateCode } = await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'beside' }, imageSize: 100 } });
    expect(generateCode.ref).toBe('beside');
  });
});
