/**
 * The self-hosted GraphiQL in a real headless Chromium, against a stand-in
 * server wired like the gateway: graphiqlRouter before Apollo on /graphql, and
 * graphql-ws on the same path. Proves the page renders, runs a query over HTTP
 * and a subscription over WebSocket with the key typed in the headers editor,
 * and never touches another origin (it must work offline).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import {
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
} from 'graphql';
import type { Disposable, ServerOptions } from 'graphql-ws';
import { chromium, type Browser, type Page } from 'playwright-core';
import { WebSocketServer } from 'ws';
import { GRAPHIQL_CSP, graphiqlRouter } from '../src/graphiql/graphiql.route';

// tsconfig's node10 resolution ignores package "exports", so the types of this
// subpath cannot be found; at runtime require() resolves it through "exports".
type UseServer = (options: ServerOptions, wss: WebSocketServer) => Disposable;
const { useServer } = require('graphql-ws/use/ws') as { useServer: UseServer };

const CHROMIUM = '/usr/bin/chromium';
const REPO = path.resolve(__dirname, '..');
const BUNDLE_INDEX = path.join(REPO, 'dist', 'graphiql', 'index.html');
const KEY = 'Bearer e2e-secret';
const TICKS = [1, 2, 3];

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function* ticks(): AsyncGenerator<number> {
  for (const tick of TICKS) {
    // Spaced out so the values are pushed one by one rather than in a single burst.
    await delay(250);
    yield tick;
  }
}

const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: {
      hello: { type: new GraphQLNonNull(GraphQLString), resolve: () => 'world' },
      whoami: {
        type: GraphQLString,
        resolve: (_root, _args, context: { authorization?: string }) => context.authorization ?? null,
      },
    },
  }),
  subscription: new GraphQLObjectType({
    name: 'Subscription',
    fields: {
      tick: {
        type: new GraphQLNonNull(GraphQLInt),
        subscribe: () => ticks(),
        resolve: (tick: number) => tick,
      },
    },
  }),
});

interface TestServer {
  origin: string;
  /** connection_init payloads the WebSocket server received. */
  connectionParams: Array<Record<string, unknown> | undefined>;
  close(): Promise<void>;
}

async function startServer(): Promise<TestServer> {
  const app = express();
  app.use(graphiqlRouter());
  const apollo = new ApolloServer<{ authorization?: string }>({ schema });
  await apollo.start();
  app.use(
    '/graphql',
    express.json(),
    expressMiddleware(apollo, { context: async ({ req }) => ({ authorization: req.get('authorization') }) }),
  );

  const server = http.createServer(app);
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const connectionParams: TestServer['connectionParams'] = [];
  const wsServer = useServer(
    {
      schema,
      onConnect: (ctx) => {
        connectionParams.push(ctx.connectionParams);
        return ctx.connectionParams?.authorization === KEY;
      },
    },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    connectionParams,
    async close() {
      await wsServer.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await apollo.stop();
    },
  };
}

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

/** Replaces the whole content of a Monaco editor the way a user would: focus, select all, type. */
async function replaceEditorContent(
  page: Page,
  editorSelector: string,
  text: string,
  operationName?: string,
): Promise<void> {
  // Hidden editors (e.g. variables while headers is shown) stay in the DOM.
  await page.locator(`${editorSelector} .monaco-editor:visible`).first().click();
  await page.keyboard.press('ControlOrMeta+A');
  await page.keyboard.press('Delete');
  // insertText delivers the text in one input event, so Monaco's bracket
  // auto-closing and suggestions do not alter it as they would per keystroke.
  await page.keyboard.insertText(text);
  // GraphiQL parses the document with a debounce; the tab title shows the new
  // operation name once it has, and running before that sends the old name.
  if (operationName) await page.locator('.graphiql-tab', { hasText: operationName }).waitFor();
}

/** Waits until the response editor shows text matching `pattern` (Monaco renders spaces as U+00A0, hence \s). */
async function waitForResponse(page: Page, pattern: RegExp): Promise<string> {
  const lines = page.locator('.graphiql-response .monaco-editor .view-lines', { hasText: pattern });
  await lines.waitFor({ timeout: 10_000 });
  return (await lines.innerText()).replace(/\u00a0/g, ' ');
}

describe('GraphiQL at /graphql', () => {
  let server: TestServer;

  beforeAll(async () => {
    ensureBundle();
    server = await startServer();
  }, 120_000);

  afterAll(async () => {
    await server?.close();
  });

  describe('HTTP routing', () => {
    it('serves the page to a browser navigation, with CSP and no-cache', async () => {
      const res = await fetch(`${server.origin}/graphql`, {
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
        const assetRes = await fetch(`${server.origin}${asset}`);
        expect(assetRes.status).toBe(200);
        expect(assetRes.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      }
    });

    it('lets a GET with ?query= through to Apollo', async () => {
      const res = await fetch(`${server.origin}/graphql?query=${encodeURIComponent('{hello}')}`, {
        headers: { accept: 'application/json', 'apollo-require-preflight': '1' },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ data: { hello: 'world' } });
    });

    it('lets a browser navigation with ?query= through to Apollo', async () => {
      const res = await fetch(`${server.origin}/graphql?query=${encodeURIComponent('{hello}')}`, {
        headers: { accept: 'text/html,*/*;q=0.8', 'apollo-require-preflight': '1' },
      });
      expect(res.headers.get('content-security-policy')).toBeNull();
      expect(await res.text()).not.toContain('/graphiql/assets/');
    });

    it('answers 503 with the build command when the bundle is missing', async () => {
      const emptyDir = mkdtempSync(path.join(os.tmpdir(), 'graphiql-missing-'));
      const app = express().use(graphiqlRouter({ assetsDir: emptyDir }));
      const missing = http.createServer(app);
      try {
        await new Promise<void>((resolve) => missing.listen(0, '127.0.0.1', resolve));
        const { port } = missing.address() as AddressInfo;
        const res = await fetch(`http://127.0.0.1:${port}/graphql`, { headers: { accept: 'text/html' } });
        expect(res.status).toBe(503);
        expect(await res.text()).toContain('npm run build');
      } finally {
        await new Promise<void>((resolve) => missing.close(() => resolve()));
        rmSync(emptyDir, { recursive: true, force: true });
      }
    });
  });

  describe('in Chromium', () => {
    let browser: Browser;
    let page: Page;
    const requested: string[] = [];
    const webSockets: string[] = [];
    const problems: string[] = [];

    beforeAll(async () => {
      if (!existsSync(CHROMIUM)) {
        throw new Error(`Chromium is missing at ${CHROMIUM}: install it with \`apt-get install -y chromium\``);
      }
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on('request', (request) => requested.push(request.url()));
      page.on('websocket', (socket) => webSockets.push(socket.url()));
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
    });

    it('renders GraphiQL with the default operation', async () => {
      await page.goto(`${server.origin}/graphql`);
      await page.locator('.graphiql-query-editor .monaco-editor .view-lines').waitFor({ timeout: 20_000 });
      await expect(page.locator('.graphiql-query-editor .view-lines').innerText()).resolves.toContain('codes');
      await screenshot(page, 'graphiql-loaded');
    });

    it('runs a query over HTTP with the Authorization typed in the headers editor', async () => {
      await page.getByText('Headers', { exact: true }).click();
      await replaceEditorContent(page, '.graphiql-editor-tool', `{ "Authorization": "${KEY}" }`);
      await replaceEditorContent(page, '.graphiql-query-editor', 'query Hello { hello whoami }', 'Hello');
      await page.locator('.graphiql-execute-button').click();

      const response = await waitForResponse(page, /"hello":\s"world"/);
      expect(response).toContain(`"whoami": "${KEY}"`);
      await screenshot(page, 'graphiql-query');
    });

    it('runs a subscription over WebSocket, authenticated by connection_init', async () => {
      await replaceEditorContent(page, '.graphiql-query-editor', 'subscription Ticks { tick }', 'Ticks');
      await page.locator('.graphiql-execute-button').click();

      // Each pushed value replaces the previous one in the response editor.
      await waitForResponse(page, /"tick":\s1\b/);
      await waitForResponse(page, /"tick":\s3\b/);
      expect(webSockets).toEqual([`${server.origin.replace('http:', 'ws:')}/graphql`]);
      expect(server.connectionParams).toEqual([{ authorization: KEY }]);
      await screenshot(page, 'graphiql-subscription');
    });

    it('opens a new socket with the new key after the headers change', async () => {
      await replaceEditorContent(page, '.graphiql-editor-tool', '{ "authorization": "Bearer wrong" }');
      await page.locator('.graphiql-execute-button').click();

      // The server refuses the key in connection_init by closing with 4403; the client must not retry.
      await waitForResponse(page, /4403/);
      expect(server.connectionParams).toEqual([{ authorization: KEY }, { authorization: 'Bearer wrong' }]);
      expect(webSockets).toHaveLength(2);
      await screenshot(page, 'graphiql-refused-key');
    });

    it('made no request to any other origin and hit no CSP violation', () => {
      const network = requested.filter((url) => !url.startsWith('data:') && !url.startsWith('blob:'));
      expect(network.length).toBeGreaterThan(0);
      expect(network.filter((url) => new URL(url).origin !== server.origin)).toEqual([]);
      // Monaco silently falls back to the main thread when a worker cannot start.
      for (const worker of ['editor', 'json', 'graphql']) {
        expect(network.some((url) => url.includes(`/graphiql/assets/${worker}.worker-`))).toBe(true);
      }
      expect(webSockets.filter((url) => new URL(url).host !== new URL(server.origin).host)).toEqual([]);
      expect(problems).toEqual([]);
    });
  });
});

/** Set GRAPHIQL_SCREENSHOTS=<dir> to look at what the browser rendered. */
async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env.GRAPHIQL_SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`) });
}
