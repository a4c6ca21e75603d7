/**
 * CORS_ORIGINS on real gateways: /graphql answers browser apps on the listed origins (preflight
 * and request), nothing else gets CORS headers, Apollo's CSRF prevention still holds, and
 * Chromium itself lets a page on another origin call /graphql only when that origin is listed.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { launchChromium } from './support/chromium';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { postScans, scanOf } from './support/webhook';

const APP = 'https://app.example.com';
const DEV = 'http://localhost:5173';
const OTHER = 'https://evil.example.com';
const QUERY = JSON.stringify({ query: '{ codes(first: 1) { totalCount } }' });

/** Every Access-Control-* header of a response. */
function corsHeaders(response: Response): Record<string, string> {
  const found: Record<string, string> = {};
  response.headers.forEach((value, name) => {
    if (name.startsWith('access-control-')) found[name] = value;
  });
  return found;
}

function preflight(gateway: TestGateway, origin: string, path = '/graphql', method = 'POST'): Promise<Response> {
  return fetch(`${gateway.url}${path}`, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': method,
      'access-control-request-headers': 'content-type,authorization',
    },
  });
}

function postQuery(gateway: TestGateway, origin: string): Promise<Response> {
  return fetch(`${gateway.url}/graphql`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: QUERY });
}

function getQuery(gateway: TestGateway, origin: string): Promise<Response> {
  const query = encodeURIComponent('{ codes(first: 1) { totalCount } }');
  return fetch(`${gateway.url}/graphql?query=${query}`, { headers: { origin, 'apollo-require-preflight': 'true' } });
}

async function expectAnswered(response: Response): Promise<void> {
  expect(response.status).toBe(200);
  expect(await response.json()).toEqual({ data: { codes: { totalCount: 0 } } });
}

/** The routes that are never CORS-enabled, each asked as a browser on `origin` would. */
async function expectNoCorsOutsideGraphql(gateway: TestGateway, origin: string): Promise<void> {
  const webhook = await fetch(`${gateway.url}/webhook`, {
    method: 'POST',
    headers: { origin, 'content-type': 'application/json' },
    body: '{}',
  });
  expect(webhook.status).toBe(401); // unsigned
  expect(corsHeaders(webhook)).toEqual({});
  const webhookPreflight = await preflight(gateway, origin, '/webhook');
  expect(webhookPreflight.status).toBe(404);
  expect(corsHeaders(webhookPreflight)).toEqual({});
  const metrics = await fetch(`${gateway.url}/metrics`, { headers: { origin } });
  expect(metrics.status).toBe(200);
  expect(corsHeaders(metrics)).toEqual({});
  const metricsPreflight = await preflight(gateway, origin, '/metrics', 'GET');
  expect(corsHeaders(metricsPreflight)).toEqual({});
  const health = await fetch(`${gateway.url}/healthz`, { headers: { origin } });
  expect(corsHeaders(health)).toEqual({});
  // A signed webhook still counts, with no CORS header either.
  const signed = await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: 'cors-webhook' })]);
  expect(signed.status).toBe(200);
}

describe('CORS_ORIGINS with a list of origins', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { CORS_ORIGINS: `${APP}, ${DEV}` });
  }, 60_000);

  it.each([APP, DEV])('answers the preflight of %s with the allowed methods and headers', async (origin) => {
    const response = await preflight(gateway, origin);
    expect(response.status).toBe(204);
    expect(corsHeaders(response)).toEqual({
      'access-control-allow-origin': origin,
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'content-type, authorization, apollo-require-preflight, x-request-id',
    });
    expect(response.headers.get('vary')).toMatch(/\bOrigin\b/);
  });

  it('answers a POST and a GET from an allowed origin, with its Allow-Origin and Vary: Origin', async () => {
    for (const response of [await postQuery(gateway, APP), await getQuery(gateway, DEV)]) {
      expect(response.headers.get('access-control-allow-origin')).toBe(response.url.includes('?') ? DEV : APP);
      expect(response.headers.get('access-control-allow-credentials')).toBeNull();
      expect(response.headers.get('vary')).toMatch(/\bOrigin\b/);
      await expectAnswered(response);
    }
  });

  it('gives an origin not in the list no allow header (preflight refused, request unchanged)', async () => {
    const refused = await preflight(gateway, OTHER);
    expect(refused.status).toBe(404);
    expect(corsHeaders(refused)).toEqual({});
    // Only exact origins match: another scheme, port or a suffix is another origin.
    for (const origin of ['http://app.example.com', 'https://app.example.com:8443', 'https://app.example.com.evil.com', 'null']) {
      expect(corsHeaders(await preflight(gateway, origin))).toEqual({});
    }
    // Without CORS the browser withholds the answer; the server answers as it always did.
    const post = await postQuery(gateway, OTHER);
    expect(corsHeaders(post)).toEqual({});
    expect(post.headers.get('vary')).toMatch(/\bOrigin\b/);
    await expectAnswered(post);
  });

  it('keeps answering same-origin and non-browser clients without CORS headers', async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: QUERY,
    });
    expect(corsHeaders(response)).toEqual({});
    await expectAnswered(response);
  });

  it("keeps Apollo's CSRF prevention: a cross-origin text/plain POST is refused with 400", async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'text/plain' },
      body: QUERY,
    });
    expect(response.status).toBe(400);
    expect(await response.text()).toMatch(/CSRF/i);
    // A GET without a header that needs a preflight is refused the same way.
    const query = encodeURIComponent('{ codes(first: 1) { totalCount } }');
    const get = await fetch(`${gateway.url}/graphql?query=${query}`, { headers: { origin: APP } });
    expect(get.status).toBe(400);
  });

  it('never puts CORS headers on the webhook, /metrics or /healthz', async () => {
    await expectNoCorsOutsideGraphql(gateway, APP);
  });
});

describe('CORS_ORIGINS with an API key', () => {
  let gateway: TestGateway;
  const KEY = 'cors-admin-key';

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { CORS_ORIGINS: APP, ADMIN_API_KEY: KEY });
  }, 60_000);

  it('answers the preflight before the key check (a browser sends no Authorization with it)', async () => {
    const response = await preflight(gateway, APP);
    expect(response.status).toBe(204);
    expect(response.headers.get('access-control-allow-headers')).toContain('authorization');
  });

  it('answers the key in Authorization, and lets the app read a 401', async () => {
    const answered = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { origin: APP, 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: QUERY,
    });
    expect(answered.headers.get('access-control-allow-origin')).toBe(APP);
    await expectAnswered(answered);
    const refused = await postQuery(gateway, APP);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(APP);
  });
});

describe('CORS_ORIGINS=*', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', { CORS_ORIGINS: '*' });
  }, 60_000);

  it('allows any origin with Access-Control-Allow-Origin: *', async () => {
    const response = await preflight(gateway, OTHER);
    expect(response.status).toBe(204);
    expect(corsHeaders(response)).toMatchObject({ 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET, POST' });
    const post = await postQuery(gateway, OTHER);
    expect(post.headers.get('access-control-allow-origin')).toBe('*');
    await expectAnswered(post);
  });

  it('still refuses a cross-origin text/plain POST (CSRF prevention) and keeps other routes without CORS', async () => {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { origin: OTHER, 'content-type': 'text/plain' },
      body: QUERY,
    });
    expect(response.status).toBe(400);
    await expectNoCorsOutsideGraphql(gateway, OTHER);
  });
});

describe('without CORS_ORIGINS', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway('sqlite');
  }, 60_000);

  it('sends no CORS header anywhere, as before', async () => {
    const refused = await preflight(gateway, APP);
    expect(refused.status).toBe(404);
    expect(corsHeaders(refused)).toEqual({});
    const post = await postQuery(gateway, APP);
    expect(corsHeaders(post)).toEqual({});
    await expectAnswered(post);
    await expectNoCorsOutsideGraphql(gateway, APP);
  });
});

describe('in Chromium, a page on another origin calling /graphql', () => {
  let browser: Browser;
  let appServer: Server;
  let appOrigin: string;
  const APP_PAGE = '<!doctype html><title>app</title><p>app</p>';

  /** What the page's fetch gave: the answer, or the error a blocked CORS request raises. */
  async function fetchFromPage(gateway: TestGateway): Promise<{ ok: true; body: unknown } | { ok: false; error: string }> {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const consoleLines: string[] = [];
      page.on('console', (message) => consoleLines.push(message.text()));
      await page.goto(`${appOrigin}/`);
      const result = await page.evaluate(
        async ({ url, body }) => {
          try {
            const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
            return { ok: true as const, body: (await response.json()) as unknown };
          } catch (error) {
            return { ok: false as const, error: String(error) };
          }
        },
        { url: `${gateway.url}/graphql`, body: QUERY },
      );
      if (!result.ok) result.error += ` | ${consoleLines.join(' | ')}`;
      return result;
    } finally {
      await context.close();
    }
  }

  beforeAll(async () => {
    appServer = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(APP_PAGE);
    });
    await new Promise<void>((resolve) => appServer.listen(0, '127.0.0.1', resolve));
    appOrigin = `http://127.0.0.1:${(appServer.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (appServer ? appServer.close(() => resolve()) : resolve()));
  });

  it('gets the answer when the page origin is in CORS_ORIGINS', async () => {
    const gateway = await startTestGateway('sqlite', { CORS_ORIGINS: `${APP},${appOrigin}` });
    await expect(fetchFromPage(gateway)).resolves.toEqual({ ok: true, body: { data: { codes: { totalCount: 0 } } } });
  }, 60_000);

  it('fails with a CORS error when it is not', async () => {
    const gateway = await startTestGateway('sqlite', { CORS_ORIGINS: APP });
    const result = await fetchFromPage(gateway);
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ error: expect.stringMatching(/Failed to fetch/) });
    expect(result).toMatchObject({ error: expect.stringMatching(/CORS policy/) });
  }, 60_000);
});
