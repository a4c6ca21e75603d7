import { randomUUID } from 'node:crypto';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DocumentNode, GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import { CloseCode, handleProtocols, makeServer } from 'graphql-ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Access } from '../access';
import { TooManySubscriptionsError } from '../errors';
import { DocumentCache } from '../graphql/document-cache';
import { hidingSuggestions } from '../graphql/operation-limits';
import { subscribeSharingResults } from '../graphql/shared-subscription-execution';
import type { Logger } from '../logging/logger';
import { EVENT_CHOOSING_SUBSCRIPTIONS } from '../scans/scan.resolver';
import type { GraphQLContext } from './graphql-context';
import type { Services } from './services';
import { WebSocketSender } from './websocket-sender';

export interface GraphqlWebSocketOptions {
  schema: GraphQLSchema;
  introspection: boolean;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  services: Services;
  logger: Logger;
  contextFor: (requestId: string, access: Access, dropConnection: (reason: string) => void) => GraphQLContext;
}

export interface GraphqlWebSocket {
  /** Closes every socket (1001, going away) and stops accepting upgrades. */
  dispose(): Promise<void>;
}

const GRAPHQL_PATH = '/graphql';

/**
 * The contract's bound on one message. ws applies it to every frame as soon as its header
 * says its length, before buffering it, and closes with 1009 (ping frames are at most 125
 * bytes by the protocol itself).
 */
const MAX_MESSAGE_BYTES = 64 * 1024;
/** Until the connection is acknowledged: connection_init carries an API key, nothing bigger. */
const MAX_MESSAGE_BYTES_BEFORE_ACK = 4 * 1024;
/** A socket that has not sent connection_init by then is closed (4408). */
const CONNECTION_INIT_TIMEOUT_MS = 3_000;
/** Subscriptions one connection may have at once (a query or mutation in flight counts as one). */
const MAX_SUBSCRIPTIONS_PER_CONNECTION = 100;
/** Messages (and ping frames) of one connection: a burst of this many, then this many a second. */
const MESSAGE_BURST = 200;
const MESSAGES_PER_SECOND = 100;
/** graphql-ws's own keep-alive: a ping every 12 s; no pong within 12 s terminates the socket. */
const KEEP_ALIVE_MS = 12_000;

/**
 * How often open sockets are checked against the database for keys revoked elsewhere
 * (another instance, the keys CLI) and for a gateway no longer open: a revoked key's
 * socket is closed within this (the contract: 5 s). Revocations through this instance
 * close at once.
 */
const REVOCATION_CHECK_MS = 2_000;
/** graphql-ws's close code for a refused connection (the contract's "Forbidden"). */
const CLOSE_FORBIDDEN = CloseCode.Forbidden;

/** RFC 6455 close codes. */
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_MESSAGE_TOO_BIG = 1009;

/** What graphql-ws hands back to our hooks about a connection. */
interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  /** connection_init was received and accepted. */
  acknowledged: boolean;
  /** who the connection authenticated as, once acknowledged */
  access?: Access;
}

/** A token bucket: `take` says whether one more message fits. */
class MessageRate {
  private tokens = MESSAGE_BURST;
  private last = performance.now();

  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(MESSAGE_BURST, this.tokens + ((now - this.last) / 1000) * MESSAGES_PER_SECOND);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, part) => sum + part.length, 0);
  return data.byteLength;
}

/**
 * graphql-ws (the graphql-transport-ws protocol) on /graphql of an HTTP server that is
 * already listening. Upgrades to any other path are refused. The socket adapter is ours
 * (graphql-ws's makeServer, as its own `useServer` does) so that a message is measured and
 * counted before graphql-ws reads it.
 */
export function attachGraphqlWebSocket(httpServer: HttpServer, options: GraphqlWebSocketOptions): GraphqlWebSocket {
  const { schema, services, logger } = options;
  // noServer: upgrades are routed here by path, and a listen error is never re-emitted by ws.
  const webSocketServer = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, handleProtocols });
  const documents = new DocumentCache(schema, { introspection: options.introspection });
  const formatError = options.introspection ? options.formatError : hidingSuggestions(options.formatError);
  const formatErrors = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));

  /** Acknowledged sockets and who they are: what revocations are checked against. */
  const authenticated = new Map<WebSocket, Access>();

  const server = makeServer<Record<string, unknown>, Extra>({
    schema,
    subscribe: subscribeSharingResults(EVENT_CHOOSING_SUBSCRIPTIONS),
    connectionInitWaitTimeout: CONNECTION_INIT_TIMEOUT_MS,
    onSubscribe: (context, _id, payload) => {
      // graphql-ws has already counted this one among the connection's operations.
      if (Object.keys(context.subscriptions).length > MAX_SUBSCRIPTIONS_PER_CONNECTION)
        return [new TooManySubscriptionsError(MAX_SUBSCRIPTIONS_PER_CONNECTION)];
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
    onConnect: async ({ connectionParams, extra }) => {
      const access = await services.apiKeys.authenticate(connectionParams?.authorization);
      if (access) {
        extra.acknowledged = true;
        extra.access = access;
        authenticated.set(extra.socket, access);
        return true;
      }
      logger.warn('WebSocket refused: missing or unknown API key');
      return false;
    },
    context: ({ extra }) =>
      options.contextFor(randomUUID(), extra.access as Access, (reason) => {
        logger.warn({ reason }, 'dropping a WebSocket connection');
        // terminate, not close: a client that stopped reading would never read a close frame.
        extra.socket.terminate();
      }),
  });

  const closeRevoked = (apiKeyId: string) => {
    for (const [socket, access] of authenticated) {
      if (access.apiKeyId === apiKeyId) {
        logger.info({ apiKeyId }, 'closing a WebSocket: its API key was revoked');
        socket.close(CLOSE_FORBIDDEN, 'API key revoked');
      }
    }
  };
  const stopListening = services.apiKeys.onRevoked(closeRevoked);
  const checkRevocations = async () => {
    const accesses = [...authenticated.values()];
    const keyIds = [...new Set(accesses.flatMap((access) => access.apiKeyId ?? []))];
    for (const apiKeyId of await services.apiKeys.revokedAmong(keyIds)) closeRevoked(apiKeyId);
    // Sockets let in while the gateway was open: the first key locks them out too.
    if (accesses.some((access) => access.principal.kind === 'open') && !(await services.apiKeys.isOpen())) {
      for (const [socket, access] of authenticated) {
        if (access.principal.kind === 'open') socket.close(CLOSE_FORBIDDEN, 'An API key is now required');
      }
    }
  };

  let checking = false;
  const revocationCheck = setInterval(() => {
    if (checking || authenticated.size === 0) return;
    checking = true;
    void checkRevocations()
      .catch((error: Error) => logger.warn({ error: error.message }, 'could not check open WebSockets for revoked API keys'))
      .finally(() => {
        checking = false;
      });
  }, REVOCATION_CHECK_MS);
  revocationCheck.unref();
  // Emitted by onUpgrade below, with the TCP socket the upgrade came on.
  webSocketServer.on('connection', (socket: WebSocket, request: IncomingMessage, connection: Duplex) => {
    const sender = new WebSocketSender(socket, connection);
    const extra: Extra = { socket, request, acknowledged: false };
    const rate = new MessageRate();
    let refused = false;
    const refuse = (code: number, reason: string) => {
      if (refused) return;
      refused = true;
      logger.warn({ code, reason }, 'closing a WebSocket');
      socket.close(code, reason);
    };
    // ws reports a bad frame (one over maxPayload: 1009) here, and closes the socket itself.
    socket.on('error', (error) => logger.warn({ err: error }, 'WebSocket error'));
    // Ping frames are answered by ws; they count towards the rate all the same.
    socket.on('ping', () => {
      if (!rate.take()) refuse(CLOSE_POLICY_VIOLATION, `Too many messages: at most ${MESSAGES_PER_SECOND} a second`);
    });

    let pongWait: NodeJS.Timeout | undefined;
    const keepAlive = setInterval(() => {
      if (socket.readyState !== socket.OPEN) return;
      pongWait = setTimeout(() => socket.terminate(), KEEP_ALIVE_MS);
      socket.once('pong', () => clearTimeout(pongWait));
      socket.ping();
    }, KEEP_ALIVE_MS);

    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) => sender.send(data),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data: RawData) => {
            if (refused) return;
            if (!extra.acknowledged && byteLength(data) > MAX_MESSAGE_BYTES_BEFORE_ACK) {
              return refuse(CLOSE_MESSAGE_TOO_BIG, `Message too big: at most ${MAX_MESSAGE_BYTES_BEFORE_ACK} bytes before connection_ack`);
            }
            if (!rate.take()) return refuse(CLOSE_POLICY_VIOLATION, `Too many messages: at most ${MESSAGES_PER_SECOND} a second`);
            // The promise settles when the operation ends (a subscription: when it completes).
            handle(String(data)).catch((error: unknown) => {
              logger.error({ err: error }, 'unexpected error handling a WebSocket message');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      extra,
    );
    socket.once('close', (code, reason) => {
      authenticated.delete(socket);
      clearInterval(keepAlive);
      clearTimeout(pongWait);
      closed(code, String(reason)).catch((error: unknown) => logger.error({ err: error }, 'unexpected error closing a WebSocket'));
    });
  });

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = request.url?.split('?')[0];
    if (path !== GRAPHQL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) => webSocketServer.emit('connection', webSocket, request, socket));
  };
  httpServer.on('upgrade', onUpgrade);

  return {
    dispose: async () => {
      httpServer.off('upgrade', onUpgrade);
      clearInterval(revocationCheck);
      stopListening();
      for (const client of webSocketServer.clients) client.close(1001, 'Going away');
      webSocketServer.removeAllListeners();
      await new Promise<void>((resolve, reject) => webSocketServer.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
