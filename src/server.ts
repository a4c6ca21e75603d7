import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type ErrorRequestHandler } from 'express';
import type { DocumentNode, GraphQLError } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import type { GatewayConfig } from './config';
import type { RequestContext } from './context';
import { ApiKeys } from './auth/api-keys';
import { CodeService } from './codes/code.service';
import type { CodeImageProvider } from './codes/providers/code-image-provider';
import { FacebookCodeImageProvider } from './codes/providers/facebook.provider';
import { LocalCodeImageProvider } from './codes/providers/local.provider';
import { Database } from './db/database';
import { graphiqlRouter } from './graphiql/graphiql.route';
import { DocumentCache } from './graphql/document-cache';
import { createErrorFormatter } from './graphql/format-error';
import { subscribeSharingResults } from './graphql/shared-subscription-execution';
import { createLoaders, type GraphQLContext, type Services } from './graphql/graphql-context';
import { gatewaySchema } from './graphql/schema';
import { imageRouter } from './images/image.route';
import { ImageStore } from './images/image.store';
import { logger } from './logger';
import { PageService } from './pages/page.service';
import { ScanFeed } from './pubsub';
import { PsidHasher } from './scans/psid-hash';
import { RefCounterStore } from './scans/ref-counter.store';
import { ScanService } from './scans/scan.service';
import { ScanWriter } from './scans/scan.store';
import { webhookRouter } from './webhook/webhook.route';

/** Largest image a Graph API download may return. */
const MAX_UPSTREAM_IMAGE_BYTES = 5 * 1024 * 1024;

export interface Gateway {
  /** Base URL the server listens on, e.g. http://127.0.0.1:4000 */
  url: string;
  /** Base of the absolute URLs handed out (PUBLIC_URL, or http://localhost:<port>). */
  publicUrl: string;
  httpServer: Server;
  db: Database;
  services: Services;
  /** Stops accepting, drains requests and sockets, closes the database. Idempotent. */
  stop(): Promise<void>;
}

function createProvider(config: GatewayConfig): CodeImageProvider {
  if (config.codeProvider === 'local') return new LocalCodeImageProvider();
  return new FacebookCodeImageProvider({
    graphApiUrl: config.graphApiUrl,
    graphApiVersion: config.graphApiVersion,
    allowedImageHosts: config.codeImageHosts,
    requestTimeoutMs: config.graphApiTimeoutMs,
    maxAttempts: config.graphApiMaxAttempts,
    retryBaseDelayMs: 200,
    maxImageBytes: MAX_UPSTREAM_IMAGE_BYTES,
  });
}

function requestContext(requestId: string | undefined): RequestContext {
  const valid = requestId !== undefined && /^[\w.-]{1,100}$/.test(requestId);
  return { requestId: valid ? requestId : randomUUID() };
}

export async function startGateway(config: GatewayConfig): Promise<Gateway> {
  const db = await Database.open(config.database);
  let publicUrl = config.publicUrl ?? '';
  const images = new ImageStore(db, () => publicUrl);
  const pages = new PageService(config.defaultPageId, config.pageAccessToken);
  const counters = new RefCounterStore(db);
  const feed = new ScanFeed({ maxBacklog: config.subscriberMaxBacklog, redisUrl: config.redisUrl });
  const codes = new CodeService(db, pages, createProvider(config), images, counters);
  const services: Services = {
    codes,
    scans: new ScanService(db, feed, new PsidHasher(config), new ScanWriter(db), codes),
    feed,
  };
  const contextFor = (requestId: string | undefined, dropConnection?: (reason: string) => void): GraphQLContext => ({
    request: requestContext(requestId),
    services,
    loaders: createLoaders(services),
    ...(dropConnection ? { dropConnection } : {}),
  });

  const app = express();
  app.disable('x-powered-by');
  const httpServer = createServer(app);
  const schema = gatewaySchema();

  const webSocketServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const apiKeys = new ApiKeys(config.adminApiKey);
  const formatError = createErrorFormatter(config.production);
  const documents = new DocumentCache(schema, { introspection: config.introspection });
  const formatErrors = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));
  const webSocketCleanup = useServer<Record<string, unknown>>(
    {
      schema,
      subscribe: subscribeSharingResults,
      onSubscribe: (_context, _id, payload) => {
        const document = documents.get(payload.query);
        if (Array.isArray(document)) return document as readonly GraphQLError[];
        // Context and root value are filled in by graphql-ws from the options.
        return { schema, document: document as DocumentNode, operationName: payload.operationName, variableValues: payload.variables };
      },
      // The same masking and fields as over HTTP. Results are shared between subscribers,
      // so errors are formatted into a copy.
      onNext: (_context, _id, _payload, _args, result) => (result.errors ? { ...result, errors: formatErrors(result.errors) } : undefined),
      onError: (_context, _id, _payload, errors) => formatErrors(errors),
      // Returning false closes the socket with 4403 Forbidden, as the contract says.
      onConnect: ({ connectionParams }) => !apiKeys.required || apiKeys.authenticate(connectionParams?.authorization) !== undefined,
      context: ({ extra }) =>
        contextFor(undefined, (reason) => {
          logger.warn('dropping a WebSocket connection', { reason });
          // terminate, not close: a client that stopped reading would never read a close frame.
          extra.socket.terminate();
        }),
    },
    webSocketServer,
  );

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    introspection: config.introspection,
    // main.ts owns the signals: Apollo re-raising them would kill the process mid-stop.
    stopOnTerminationSignals: false,
    formatError,
    // Internal errors are logged with their stack; clients only ever need the message and code.
    includeStacktraceInErrorResponses: false,
    plugins: [
      // Leaves time to close the database inside the 10 s a supervisor usually grants.
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: 7000 }),
      {
        async serverWillStart() {
          return {
            async drainServer() {
              await webSocketCleanup.dispose();
            },
          };
        },
      },
      // Browsers get the self-hosted GraphiQL (an express route), never a CDN page.
      ApolloServerPluginLandingPageDisabled(),
      // No HTTP cache hints are used; the default plugin would wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await apollo.start();

  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });
  app.get('/readyz', async (_request, response) => {
    const database = await db.ping().then(
      () => 'ok',
      (error: Error) => {
        logger.warn('readiness check: database unreachable', { error: error.message });
        return 'unreachable';
      },
    );
    const redis = await feed.redisReady();
    const checks = { database, ...(redis === undefined ? {} : { redis: redis ? 'ok' : 'unreachable' }) };
    const ready = database === 'ok' && redis !== false;
    response.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', ...checks });
  });
  if (config.benchmarkRoutes) {
    app.post('/bench/plain', express.raw({ type: () => true, limit: config.webhookMaxBytes }), (_request, response) => {
      response.status(200).type('text/plain').send('EVENT_RECEIVED');
    });
  }
  app.use(
    webhookRouter(services.scans, {
      appSecret: config.appSecret,
      verifyToken: config.webhookVerifyToken,
      maxBytes: config.webhookMaxBytes,
    }),
  );
  app.use(imageRouter(images));
  // Before Apollo: a browser navigating to /graphql gets GraphiQL, every other request falls through.
  app.use(graphiqlRouter());
  app.use(
    '/graphql',
    apiKeys.httpGuard(),
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) => contextFor(req.get('x-request-id')),
    }),
  );
  const unexpected: ErrorRequestHandler = (error: Error & { status?: number; expose?: boolean }, _request, response, _next) => {
    if (response.headersSent) return;
    // Body parsers flag the client's mistakes (malformed JSON 400, too large 413, charset 415).
    if (error.status !== undefined && error.status >= 400 && error.status < 500) {
      const message = error.expose ? error.message : 'Bad request';
      response.status(error.status).json({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
      return;
    }
    logger.error('unexpected error in an HTTP route', { error: error.message, stack: error.stack });
    response.status(500).type('text/plain').send('Internal server error.\n');
  };
  app.use(unexpected);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const { port } = httpServer.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  publicUrl = config.publicUrl ?? `http://localhost:${port}`;

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    publicUrl,
    httpServer,
    db,
    services,
    stop: () => {
      stopping ??= (async () => {
        await apollo.stop();
        webSocketServer.close();
        await feed.close();
        await db.close();
      })();
      return stopping;
    },
  };
}
