import { randomUUID } from 'node:crypto';
import type { ApolloServer } from '@apollo/server';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config';
import { dashboardRoutes } from '../dashboard/dashboard.route';
import { scanExportRoutes } from '../export/scan-export.route';
import { imageRoutes } from '../images/image.route';
import { lazyChild } from '../logging/lazy-child';
import { redactUrl, type Logger } from '../logging/logger';
import { messengerCodeApiRoutes } from '../codes/messenger-code-api.route';
import { printSheetRoutes } from '../print/print-sheet.route';
import { redirectRoutes } from '../tracking/redirect.route';
import { webhookRoutes } from '../webhook/webhook.route';
import type { GraphQLContext } from './graphql-context';
import { graphqlHttpRoutes, type GraphqlHttpOptions } from './graphql-http';
import { operationsRoutes } from './operations.routes';
import { registerCors } from './cors';
import { schemaRoutes } from './schema.route';

/**
 * Longer than the idle timeout of the usual load balancers (60 s): the balancer, not
 * the gateway, closes an idle connection, so a request is never sent on a socket the
 * gateway is closing at that very moment (ECONNRESET, never retried for a POST).
 */
export const KEEP_ALIVE_TIMEOUT_MS = 72_000;
/** Node requires the headers timeout to exceed the keep-alive timeout. */
export const HEADERS_TIMEOUT_MS = KEEP_ALIVE_TIMEOUT_MS + 1_000;

const REQUEST_ID = /^[\w.-]{1,100}$/;

/** Builds the Fastify app with every HTTP route of the gateway; it does not listen. */
export async function createHttpServer(
  config: GatewayConfig,
  logger: Logger,
  apollo: ApolloServer<GraphQLContext>,
  graphql: GraphqlHttpOptions,
): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    // Access lines would be two per webhook at thousands a second: requests are logged
    // when something goes wrong (warn, error), and every line carries the request id.
    logController: new LogController({ disableRequestLogging: true }),
    // Each request's logger (with its reqId) is made only if the request logs something.
    childLoggerFactory: (parent, bindings, options) => lazyChild(parent as Logger, bindings, options),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // A caller's X-Request-Id is kept when it is safe to log; otherwise a new one.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // Idle keep-alive connections are closed at once on stop; busy ones finish their request.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });
  app.server.headersTimeout = HEADERS_TIMEOUT_MS;
  if (config.logLevel === 'debug') {
    app.addHook('onResponse', async (request, reply) => {
      request.log.debug(
        { method: request.method, url: redactUrl(request.url), status: reply.statusCode, ms: reply.elapsedTime },
        'request completed',
      );
    });
  }
  app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return reply.code(error.statusCode).send({ errors: [{ message: error.message, extensions: { code: 'BAD_REQUEST' } }] });
    }
    request.log.error({ err: error }, 'unexpected error in an HTTP route');
    return reply.code(500).type('text/plain; charset=utf-8').send('Internal server error.\n');
  });
  const { services } = graphql;

  await app.register(operationsRoutes(services, { metricsToken: config.metricsToken }));
  await app.register(
    webhookRoutes(services.scans, services.relay, services.metrics, {
      appSecret: config.appSecret,
      verifyToken: config.webhookVerifyToken,
      maxBytes: config.webhookMaxBytes,
      maxInflightBytes: config.webhookMaxInflightBytes,
      receiveTimeoutMs: config.webhookReceiveTimeoutMs,
    }),
  );
  const authenticate = (authorization: unknown) => services.apiKeys.authenticate(authorization);
  await app.register(imageRoutes(services.images, authenticate));
  await app.register(redirectRoutes(services.codes, services.visits));
  await app.register(messengerCodeApiRoutes(services.messengerCodes));
  await app.register(printSheetRoutes(services.printSheets, authenticate));
  await app.register(dashboardRoutes());
  // The routes browser apps on other origins may call, in one scope with their CORS.
  await app.register(async (scope) => {
    await registerCors(scope, { corsOrigins: config.corsOrigins });
    await scope.register(graphqlHttpRoutes(apollo, graphql));
    await scope.register(scanExportRoutes(services.scans, authenticate));
    await scope.register(schemaRoutes({ introspection: config.introspection, authenticate }));
  });
  return app;
}
