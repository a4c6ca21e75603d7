/**
 * The self-hosted GraphiQL in a real headless Chromium, against the real
 * gateway (startGateway on a SQLite file): the page renders, runs a mutation
 * and a query over HTTP and a subscription over WebSocket that receives a scan
 * posted to the signed webhook, sends the key typed in the headers editor both
 * ways when ADMIN_API_KEY is set, and never touches another origin (it must
 * work offline).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import type { Browser, Page, Response } from 'playwright-core';
import type { Gateway } from '../src/app/gateway';
import { GRAPHIQL_CSP, graphiqlRoutes } from '../src/graphiql/graphiql.route';
import { CreateApiKeyDocument, GenerateCodeDocument } from './generated/graphql';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { launchChromium } from './support/chromium';
import { executeOk } from './support/graphql-client';
import { eventually, waitForSubscribers } from './support/subscriptions';
import { postScans, scanOf } from './support/webhook';

const REPO = path.resolve(__dirname, '..');
const BUNDLE_INDEX = path.join(REPO, 'dist', 'graphiql', 'index.html');
const ADMIN_KEY = 'graphiql-e2e-admin-key';
const BEARER = `Bearer ${ADMIN_KEY}`;
/** Waits on page conditions: generous for a loaded CI machine, far below the test timeout. */
const UI_TIMEOUT = 10_000;

function ensureBundle(): void {
  if (existsSync(BUNDLE_INDEX)) return;
  const result = spawnSync(process.execPath, [path.join(REPO, 'scripts', 'build-graphiql.mjs')], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`node scripts/build-graphiql.mjs failed:\n${result.stdout}\n${result.stderr}`);
  }
}

/** What one page did on the network and in its console. */
interface PageWatch {
  /** The gateway the page was opened on. */
  origin: string;
  requested: string[];
  webSockets: string[];
  /** Payloads of the graphql-ws connection_init messages the page sent, in order. */
  connectionInits: unknown[];
  /** Responses with status 401: Chromium logs a console error for each. */
  refused: number;
  problems: string[];
}

function watch(page: Page, origin: string): PageWatch {
  const watched: PageWatch = { origin, requested: [], webSockets: [], connectionInits: [], refused: 0, problems: [] };
  page.on('request', (request) => watched.requested.push(request.url()));
  page.on('response', (response) => {
    if (response.status() === 401) watched.refused += 1;
  });
  page.on('websocket', (socket) => {
    watched.webSockets.push(socket.url());
    socket.on('framesent', ({ payload }) => {
      if (typeof payload !== 'string') return;
      const message = JSON.parse(payload) as { type?: string; payload?: unknown };
      if (message.type === 'connection_init') watched.connectionInits.push(message.payload);
    });
  });
  page.on('pageerror', (error) => watched.problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') watched.problems.push(`console: ${message.text()}`);
  });
  return watched;
}

async function openGraphiql(browser: Browser, origin: string): Promise<{ page: Page; watched: PageWatch }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const watched = watch(page, origin);
  await page.goto(`${origin}/graphql`);
  await page.locator('.graphiql-query-editor .monaco-editor .view-lines').waitFor({ timeout: 20_000 });
  return { page, watched };
}

/** Replaces the whole content of a Monaco editor the way a user would: focus, select all, type. */
async function replaceEditorContent(page: Page, editorSelector: string, text: string, operationName?: string): Promise<void> {
  // Hidden editors (e.g. variables while headers is shown) stay in the DOM.
  await page.locator(`${editorSelector} .monaco-editor:visible`).first().click({ timeout: UI_TIMEOUT });
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // insertText delivers the text in one input event, so Monaco's bracket
  // auto-closing and suggestions do not alter it as they would per keystroke.
  await page.keyboard.insertText(text);
  // GraphiQL parses the document with a debounce; the tab title shows the new
  // operation name once it has, and running before that sends the old name.
  if (operationName) await page.locator('.graphiql-tab', { hasText: operationName }).waitFor({ timeout: UI_TIMEOUT });
}

async function setHeaders(page: Page, headers: string): Promise<void> {
  // The tab shows the editor tools (collapsed at first) and selects the headers editor; it never hides them.
  const headersTab = page.locator('.graphiql-editor-tools button[data-name="headers"]');
  await headersTab.click({ timeout: UI_TIMEOUT });
  await page.locator('.graphiql-editor-tools button[data-name="headers"].active').waitFor({ timeout: UI_TIMEOUT });
  await replaceEditorContent(page, '.graphiql-editor-tool[aria-label="Headers"]', headers);
}

/** Types an operation and runs it with the execute button. */
async function run(page: Page, operation: string, operationName: string): Promise<void> {
  await replaceEditorContent(page, '.graphiql-query-editor', operation, operationName);
  await page.locator('.graphiql-execute-button[aria-label^="Execute"]').click({ timeout: UI_TIMEOUT });
}

/** Runs an operation over HTTP and returns the gateway's answer to it (not to introspection). */
async function runOverHttp(page: Page, operation: string, operationName: string): Promise<Response> {
  const answer = page.waitForResponse(
    (response) =>
      response.request().method() === 'POST' &&
      new URL(response.url()).pathname === '/graphql' &&
      (response.request().postDataJSON() as { operationName?: string } | null)?.operationName === operationName,
    { timeout: UI_TIMEOUT },
  );
  await run(page, operation, operationName);
  return answer;
}

/** Stops the running subscription with the execute button, which shows "Stop" meanwhile. */
async function stop(page: Page): Promise<void> {
  await page.locator('.graphiql-execute-button[aria-label^="Stop"]').click({ timeout: UI_TIMEOUT });
  await page.locator('.graphiql-execute-button[aria-label^="Execute"]').waitFor({ timeout: UI_TIMEOUT });
}

/** Waits until the response editor shows text matching `pattern` (Monaco renders spaces as U+00A0, hence \s). */
async function waitForResponse(page: Page, pattern: RegExp): Promise<string> {
  const lines = page.locator('.graphiql-response .monaco-editor .view-lines', { hasText: pattern });
  await lines.waitFor({ timeout: UI_TIMEOUT });
  return (await lines.innerText()).replace(/\u00a0/g, ' ');
}

/**
 * Waits until the response editor shows exactly `expected`, as GraphiQL prints it (JSON, keys
 * in the server's order). Whitespace is ignored: Monaco wraps long lines into separate rows.
 */
async function waitForResult(page: Page, expected: unknown): Promise<void> {
  const wanted = JSON.stringify(expected).replace(/\s+/g, '');
  const shown = () =>
    page.evaluate(() => document.querySelector('.graphiql-response .monaco-editor .view-lines')?.textContent?.replace(/\s+/g, '') ?? null);
  try {
    await page.waitForFunction(
      (text) => document.querySelector('.graphiql-response .monaco-editor .view-lines')?.textContent?.replace(/\s+/g, '') === text,
      wanted,
      { timeout: UI_TIMEOUT },
    );
  } catch (error) {
    throw new Error(`the response pane never showed ${wanted}; it shows ${await shown()}\n${String(error)}`);
  }
}

/** Waits until the gateway's feed has no subscriber left: the UI's subscription ended server-side. */
function waitForNoSubscriber(gateway: Gateway): Promise<void> {
  return eventually(() => gateway.services.feed.subscriberCount === 0, UI_TIMEOUT, 'no subscribers');
}

function webSocketUrl(origin: string): string {
  return `${origin.replace(/^http/, 'ws')}/graphql`;
}

describe('GraphiQL at /graphql of the gateway', () => {
  let gateway: TestGateway;

  beforeAll(async () => {
    ensureBundle();
    gateway = await startTestGateway('sqlite');
  }, 120_000);

  describe('HTTP routing', () => {
    it('serves the page to a browser navigation, with CSP and no-cache', async () => {
      const res = await fetch(`${gateway.url}/graphql`, {
        headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      expect(res.headers.get('content-security-policy')).toBe(GRAPHIQL_CSP);
      const html = await res.text();
      const assets = [...html.matchAll(/(?:src|href)="(\/graphiql\/assets\/[^"]+)"/g)].map((match) => match[1]);
      expect(assets).toHaveLength(2);

      for (const asset of assets) {
        const assetRes = await fetch(`${gateway.url}${asset}`);
        expect(assetRes.status).toBe(200);
        expect(assetRes.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      }
    });

    it('lets a GET with ?query= through to Apollo', async () => {
      const res = await fetch(`${gateway.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
        headers: { accept: 'application/json', 'apollo-require-preflight': '1' },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ data: { __typename: 'Query' } });
    });

    it('lets a browser navigation with ?query= through to Apollo', async () => {
      const res = await fetch(`${gateway.url}/graphql?query=${encodeURIComponent('{ __typename }')}`, {
        headers: { accept: 'text/html,*/*;q=0.8', 'apollo-require-preflight': '1' },
      });
      expect(res.headers.get('content-security-policy')).toBeNull();
      const body = await res.text();
      expect(body).not.toContain('/graphiql/assets/');
      expect(JSON.parse(body)).toEqual({ data: { __typename: 'Query' } });
    });

    it('answers 503 with the build command when the bundle is missing', async () => {
      // startGateway always serves the real bundle, so the router is mounted alone on an empty directory.
      const emptyDir = mkdtempSync(path.join(os.tmpdir(), 'graphiql-missing-'));
      const missing = Fastify();
      try {
        await missing.register(graphiqlRoutes({ assetsDir: emptyDir }));
        await missing.listen({ port: 0, host: '127.0.0.1' });
        const { port } = missing.server.address() as AddressInfo;
        const res = await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: 'text/html' } });
        expect(res.status).toBe(503);
        expect(await res.text()).toContain('npm run build');
      } finally {
        await missing.close();
        rmSync(emptyDir, { recursive: true, force: true });
      }
    });
  });

  describe('in Chromium', () => {
    let browser: Browser;
    const pages: PageWatch[] = [];

    beforeAll(async () => {
      browser = await launchChromium();
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    describe('without API keys', () => {
      const REF = 'graphiql-open';
      let page: Page;
      let watched: PageWatch;

      beforeAll(async () => {
        ({ page, watched } = await openGraphiql(browser, gateway.url));
        pages.push(watched);
      }, 30_000);

      it('renders GraphiQL with the default operation', async () => {
        await expect(page.locator('.graphiql-query-editor .view-lines').innerText()).resolves.toContain('codes');
        await screenshot(page, 'graphiql-loaded');
      });

      it('runs generateCode, then lists the new code', async () => {
        const generated = await runOverHttp(
          page,
          `mutation MakeCode { generateCode(input: { data: { ref: "${REF}" }, imageSize: 100 }) { ref scanCount } }`,
          'MakeCode',
        );
        expect(generated.status()).toBe(200);
        await waitForResult(page, { data: { generateCode: { ref: REF, scanCount: 0 } } });

        await run(page, 'query ListCodes { codes { totalCount edges { node { ref scanCount } } } }', 'ListCodes');
        await waitForResult(page, {
          data: { codes: { totalCount: 1, edges: [{ node: { ref: REF, scanCount: 0 } }] } },
        });
        await screenshot(page, 'graphiql-query');
      });

      it('shows a scan pushed over the WebSocket subscription', async () => {
        await run(page, `subscription LiveScans { scanned(ref: "${REF}") { ref kind code { scanCount } } }`, 'LiveScans');
        await waitForSubscribers(gateway, 1, UI_TIMEOUT);

        expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID, { ref: REF })])).status).toBe(200);
        await waitForResult(page, {
          data: { scanned: { ref: REF, kind: 'REFERRAL', code: { scanCount: 1 } } },
        });
        expect(watched.webSockets).toEqual([webSocketUrl(gateway.url)]);
        // No key typed: an empty connection_init payload.
        expect(watched.connectionInits).toEqual([{}]);
        await screenshot(page, 'graphiql-subscription');
      });

      it('ends the subscription on the gateway when stopped', async () => {
        await stop(page);
        await waitForNoSubscriber(gateway);
      });
    });

    describe('with ADMIN_API_KEY', () => {
      const REF = 'graphiql-keyed';
      let keyed: TestGateway;
      let page: Page;
      let watched: PageWatch;

      beforeAll(async () => {
        keyed = await startTestGateway('sqlite', { ADMIN_API_KEY: ADMIN_KEY });
        await executeOk(keyed.url, GenerateCodeDocument, { input: { data: { ref: REF }, imageSize: 100 } }, { authorization: BEARER });
        ({ page, watched } = await openGraphiql(browser, keyed.url));
        pages.push(watched);
      }, 30_000);

      it('serves the page itself without a key', async () => {
        const res = await fetch(`${keyed.url}/graphql`, { headers: { accept: 'text/html' } });
        expect(res.status).toBe(200);
        expect(await res.text()).toContain('/graphiql/assets/');
      });

      it('shows UNAUTHENTICATED for a query without the key', async () => {
        // The schema introspection at load was already refused, and the pane says so; hence
        // the gateway's answer to this very operation is checked too, then the pane against it.
        await waitForResponse(page, /UNAUTHENTICATED/);
        const answer = await runOverHttp(page, 'query NoKey { codes { totalCount } }', 'NoKey');
        expect(answer.status()).toBe(401);
        expect(answer.request().headers().authorization).toBeUndefined();
        const body = (await answer.json()) as { data?: unknown; errors: { extensions?: { code?: string } }[] };
        expect(body.data).toBeUndefined();
        expect(body.errors.map((error) => error.extensions?.code)).toEqual(['UNAUTHENTICATED']);
        await waitForResult(page, body);
      });

      it('shows the 4403 close for a subscription without the key', async () => {
        await run(page, `subscription NoKeyScans { scanned(ref: "${REF}") { ref } }`, 'NoKeyScans');
        // The gateway refuses the connection_init by closing with 4403; the client must not retry.
        await waitForResponse(page, /4403/);
        await page.locator('.graphiql-execute-button[aria-label^="Execute"]').waitFor({ timeout: UI_TIMEOUT });
        expect(watched.connectionInits).toEqual([{}]);
        expect(keyed.services.feed.subscriberCount).toBe(0);
      });

      it('runs a query with the Authorization typed in the headers editor', async () => {
        await setHeaders(page, `{ "Authorization": "${BEARER}" }`);
        const answer = await runOverHttp(page, 'query WithKey { codes { totalCount edges { node { ref } } } }', 'WithKey');
        expect(answer.status()).toBe(200);
        expect(answer.request().headers().authorization).toBe(BEARER);
        await waitForResult(page, {
          data: { codes: { totalCount: 1, edges: [{ node: { ref: REF } }] } },
        });
        await screenshot(page, 'graphiql-keyed-query');
      });

      it('loads the schema with the typed key when asked to re-fetch it', async () => {
        const introspection = page.waitForResponse(
          (response) =>
            response.request().method() === 'POST' &&
            (response.request().postDataJSON() as { operationName?: string } | null)?.operationName === 'IntrospectionQuery',
          { timeout: UI_TIMEOUT },
        );
        await page.locator('button[aria-label^="Re-fetch GraphQL schema"]').click({ timeout: UI_TIMEOUT });
        const answer = await introspection;
        expect(answer.status()).toBe(200);
        expect(answer.request().headers().authorization).toBe(BEARER);
        // The documentation explorer lists the root types once the schema is in.
        await page.locator('button[aria-label^="Show Documentation Explorer"]').click({ timeout: UI_TIMEOUT });
        await page.locator('.graphiql-doc-explorer', { hasText: 'Subscription' }).waitFor({ timeout: UI_TIMEOUT });
        await screenshot(page, 'graphiql-keyed-docs');
        await page.locator('button[aria-label^="Hide Documentation Explorer"]').click({ timeout: UI_TIMEOUT });
        await page.locator('.graphiql-doc-explorer').waitFor({ state: 'detached', timeout: UI_TIMEOUT });
      });

      it('runs a subscription on a new socket authenticated by connection_init', async () => {
        await run(page, `subscription KeyedScans { scanned(ref: "${REF}") { ref kind code { scanCount } } }`, 'KeyedScans');
        await waitForSubscribers(keyed, 1, UI_TIMEOUT);
        await eventually(() => watched.connectionInits.length === 2, UI_TIMEOUT, 'the second connection_init');
        expect(watched.connectionInits).toEqual([{}, { authorization: BEARER }]);

        expect((await postScans(keyed.url, [scanOf(TEST_PAGE_ID, { ref: REF })])).status).toBe(200);
        await waitForResult(page, {
          data: { scanned: { ref: REF, kind: 'REFERRAL', code: { scanCount: 1 } } },
        });
        await screenshot(page, 'graphiql-keyed-subscription');

        await stop(page);
        await waitForNoSubscriber(keyed);
      });

      it('opens a new socket with the new key after the headers change', async () => {
        await setHeaders(page, '{ "authorization": "Bearer wrong" }');
        await page.locator('.graphiql-execute-button[aria-label^="Execute"]').click({ timeout: UI_TIMEOUT });

        await waitForResponse(page, /4403/);
        expect(watched.connectionInits).toEqual([{}, { authorization: BEARER }, { authorization: 'Bearer wrong' }]);
        expect(watched.webSockets).toEqual(Array(3).fill(webSocketUrl(keyed.url)));
        expect(keyed.services.feed.subscriberCount).toBe(0);
        await screenshot(page, 'graphiql-refused-key');
      });
    });

    describe('with a stored API key typed in the key field', () => {
      const REF = 'graphiql-key-field';
      let locked: TestGateway;
      let key: string;
      let page: Page;
      let watched: PageWatch;

      beforeAll(async () => {
        locked = await startTestGateway('sqlite');
        await executeOk(locked.url, GenerateCodeDocument, { input: { data: { ref: REF }, imageSize: 100 } });
        key = (await executeOk(locked.url, CreateApiKeyDocument, { input: { name: 'graphiql', role: 'ADMIN' } })).createApiKey.key;
        ({ page, watched } = await openGraphiql(browser, locked.url));
        pages.push(watched);
      }, 30_000);

      /** Types the key into the field and uses it; GraphiQL then loads the schema again, with it. */
      async function useKey(value: string): Promise<Response> {
        const introspection = page.waitForResponse(
          (response) =>
            response.request().method() === 'POST' &&
            (response.request().postDataJSON() as { operationName?: string } | null)?.operationName === 'IntrospectionQuery',
          { timeout: UI_TIMEOUT },
        );
        await page.locator('#gateway-api-key').fill(value, { timeout: UI_TIMEOUT });
        await page.locator('.gateway-key-bar button[type="submit"]').click({ timeout: UI_TIMEOUT });
        const answer = await introspection;
        await page.locator('.graphiql-query-editor .monaco-editor .view-lines').waitFor({ timeout: UI_TIMEOUT });
        return answer;
      }

      it('loads the schema with the key as soon as it is used', async () => {
        const introspection = await useKey(key);
        expect(introspection.status()).toBe(200);
        expect(introspection.request().headers().authorization).toBe(`Bearer ${key}`);
        await page.locator('.gateway-key-state', { hasText: key.slice(0, 12) }).waitFor({ timeout: UI_TIMEOUT });
        await page.locator('button[aria-label^="Show Documentation Explorer"]').click({ timeout: UI_TIMEOUT });
        await page.locator('.graphiql-doc-explorer', { hasText: 'Subscription' }).waitFor({ timeout: UI_TIMEOUT });
        await screenshot(page, 'graphiql-key-field');
        await page.locator('button[aria-label^="Hide Documentation Explorer"]').click({ timeout: UI_TIMEOUT });
      });

      it('sends it with queries and subscriptions, and keeps it for the tab across a reload', async () => {
        const answer = await runOverHttp(page, 'query FieldKey { codes { totalCount } }', 'FieldKey');
        expect(answer.status()).toBe(200);
        expect(answer.request().headers().authorization).toBe(`Bearer ${key}`);
        await waitForResult(page, { data: { codes: { totalCount: 1 } } });

        await page.reload();
        await page.locator('.graphiql-query-editor .monaco-editor .view-lines').waitFor({ timeout: 20_000 });
        await expect(page.locator('#gateway-api-key').inputValue()).resolves.toBe(key);
        await run(page, `subscription FieldScans { scanned(ref: "${REF}") { ref code { scanCount } } }`, 'FieldScans');
        await waitForSubscribers(locked, 1, UI_TIMEOUT);
        expect(watched.connectionInits.at(-1)).toEqual({ authorization: `Bearer ${key}` });
        expect((await postScans(locked.url, [scanOf(TEST_PAGE_ID, { ref: REF })])).status).toBe(200);
        await waitForResult(page, { data: { scanned: { ref: REF, code: { scanCount: 1 } } } });
        await stop(page);
        await waitForNoSubscriber(locked);
      });

      it('prettifies the query (Prettier bundled, not fetched)', async () => {
        await replaceEditorContent(page, '.graphiql-query-editor', 'query   Ugly{codes(first:2){totalCount edges{node{ref}}}}', 'Ugly');
        await page.locator('button[aria-label^="Prettify query"]').click({ timeout: UI_TIMEOUT });
        await page.waitForFunction(
          // Monaco renders spaces as U+00A0.
          () =>
            (document.querySelector('.graphiql-query-editor .monaco-editor .view-lines')?.textContent ?? '')
              .replace(/\u00a0/g, ' ')
              .includes('query Ugly {'),
          undefined,
          { timeout: UI_TIMEOUT },
        );
        const text = (await page.locator('.graphiql-query-editor .monaco-editor .view-lines').innerText()).replace(/\u00a0/g, ' ');
        expect(text).toContain('codes(first: 2) {');
        await screenshot(page, 'graphiql-prettified');
      });

      it('forgets the key: the next query goes without one', async () => {
        await page.locator('.gateway-key-bar button[type="button"]').click({ timeout: UI_TIMEOUT });
        await page.locator('.gateway-key-state', { hasText: 'no key' }).waitFor({ timeout: UI_TIMEOUT });
        const answer = await runOverHttp(page, 'query Forgotten { codes { totalCount } }', 'Forgotten');
        expect(answer.status()).toBe(401);
        expect(answer.request().headers().authorization).toBeUndefined();
        expect(await page.evaluate(() => sessionStorage.getItem('messenger-code-gateway:api-key'))).toBeNull();
      });
    });

    it('ignores the cancellations Monaco leaves unhandled, and nothing else', async () => {
      const { page, watched } = await openGraphiql(browser, gateway.url);
      try {
        // Not in `pages`: its deliberate error below is the one problem it must show.
        await page.evaluate(() => {
          const canceled = new Error('Canceled');
          canceled.name = 'Canceled';
          void Promise.reject(canceled);
          void Promise.reject(new Error('a real failure'));
        });
        // Reported in the order they were rejected: once the second is, the first would have been.
        await eventually(() => watched.problems.length > 0, UI_TIMEOUT, 'the real failure to be reported');
        expect(watched.problems).toEqual([expect.stringContaining('a real failure')]);
      } finally {
        await page.context().close();
      }
    });

    it('made no request to any other origin and hit no CSP violation', () => {
      expect(pages).toHaveLength(3);
      for (const watched of pages) {
        const network = watched.requested.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:'));
        expect(network.length).toBeGreaterThan(0);
        expect(network.filter((url) => new URL(url).origin !== watched.origin)).toEqual([]);
        // Monaco silently falls back to the main thread when a worker cannot start.
        for (const worker of ['editor', 'json', 'graphql']) {
          expect(network.some((url) => url.startsWith(`${watched.origin}/graphiql/assets/${worker}.worker-`))).toBe(true);
        }
        expect(watched.webSockets.filter((url) => new URL(url).host !== new URL(watched.origin).host)).toEqual([]);
        // A deliberate 401 (no key yet) is logged by Chromium itself; nothing else may be.
        const refusedLog = 'console: Failed to load resource: the server responded with a status of 401 (Unauthorized)';
        expect(watched.problems.filter((problem) => problem !== refusedLog)).toEqual([]);
        expect(watched.problems.length).toBe(watched.refused);
      }
    });
  });
});

/** Set GRAPHIQL_SCREENSHOTS=<dir> to look at what the browser rendered. */
async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.GRAPHIQL_SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`) });
}
