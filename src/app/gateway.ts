import 'reflect-metadata';
// First: type-graphql orders fields and types by when their resolver modules are first
// evaluated, and schema.ts imports them in the order schema/schema.graphql is printed in
// (scripts/emit-schema.ts starts there too), so GET /schema.graphql serves the same text.
import { gatewaySchema } from './schema';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config';
import type { Database } from '../db/database';
import { createErrorFormatter } from '../graphql/format-error';
import { createLogger, type Logger } from '../logging/logger';
import { createGraphQLContext, type GraphQLContext } from './graphql-context';
import { startApollo, type GraphqlHttpOptions } from './graphql-http';
import { attachGraphqlWebSocket } from './graphql-ws';
import { createHttpServer } from './http-server';
import { buildServices, type Services } from './services';

/** Requests still running when a stop begins get this long before their sockets are cut. */
const STOP_GRACE_MS = 7_000;

export interface Gateway {
  /** Base URL the server listens on, e.g. http://127.0.0.1:4000 */
  url: string;
  /** Base of the absolute URLs handed out (PUBLIC_URL, or http://localhost:<port>). */
  publicUrl: string;
  httpServer: Server;
  db: Database;
  services: Services;
  logger: Logger;
  /** Stops accepting, drains requests and sockets, closes Redis and the database. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** default: a logger at LOG_LEVEL writing JSON lines to stdout */
  logger?: Logger;
}

/**
 * Builds the services, mounts the HTTP routes, listens, then attaches graphql-ws to the
 * listening server. A failure at any step releases what earlier steps opened.
 */
export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  let publicUrl = config.publicUrl ?? '';
  const services = await buildServices(config, logger, () => publicUrl);
  const schema = gatewaySchema();
  const formatError = createErrorFormatter(config.production, logger);
  const graphql: GraphqlHttpOptions = {
    schema,
    introspection: config.introspection,
    formatError,
    services,
    contextFor: (requestId, access) => createGraphQLContext(services, { requestId, access }, logger),
  };

  let apollo: ApolloServer<GraphQLContext> | undefined;
  let app: FastifyInstance | undefined;
  try {
    apollo = await startApollo(graphql);
    app = await createHttpServer(config, logger, apollo, graphql);
    await listenQuietly(app, config, logger);
  } catch (error) {
    await app?.close();
    await apollo?.stop();
    await services.close();
    throw error;
  }
  const webSocket = attachGraphqlWebSocket(app.server, {
    ...graphql,
    logger,
    contextFor: (requestId, access, dropConnection) => createGraphQLContext(services, { requestId, access }, logger, dropConnection),
  });

  services.relay.start();

  const { port } = app.server.address() as AddressInfo;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  publicUrl = config.publicUrl ?? `http://localhost:${port}`;

  const [stopApp, stopApollo] = [app, apollo];
  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    publicUrl,
    httpServer: app.server,
    db: services.db,
    services,
    logger,
    stop: () => {
      stopping ??= (async () => {
        await webSocket.dispose();
        // Beside the drain: rows webhooks still commit wait in the outbox for the next start.
        const relayStopped = services.relay.stop();
        // Requests in flight finish; past the grace period their sockets are cut.
        const cut = setTimeout(() => stopApp.server.closeAllConnections(), STOP_GRACE_MS);
        try {
          await stopApp.close();
        } finally {
          clearTimeout(cut);
        }
        // Before the database closes: deliveries in flight are handed back through it.
        await relayStopped;
        await stopApollo.stop();
        await services.close();
      })();
      return stopping;
    },
  };
}

/** Listens without Fastify's per-address "Server listening" lines: main.ts logs one line of its own. */
async function listenQuietly(app: FastifyInstance, config: GatewayConfig, logger: Logger): Promise<void> {
  const level = logger.level;
  if (logger.isLevelEnabled('info')) logger.level = 'warn';
  try {
    await app.listen({ port: config.port, host: config.host });
  } finally {
    logger.level = level;
  }
}
