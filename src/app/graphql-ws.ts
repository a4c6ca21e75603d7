import { randomUUID } from 'node:crypto';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { DocumentNode, GraphQLError, GraphQLFormattedError, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { DocumentCache } from '../graphql/document-cache';
import { hidingSuggestions } from '../graphql/operation-limits';
import { subscribeSharingResults } from '../graphql/shared-subscription-execution';
import type { Logger } from '../logging/logger';
import type { GraphQLContext } from './graphql-context';
import type { Services } from './services';

export interface GraphqlWebSocketOptions {
  schema: GraphQLSchema;
  introspection: boolean;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  services: Services;
  logger: Logger;
  contextFor: (requestId: string, dropConnection: (reason: string) => void) => GraphQLContext;
}

export interface GraphqlWebSocket {
  /** Closes every socket (1001, going away) and stops accepting upgrades. */
  dispose(): Promise<void>;
}

const GRAPHQL_PATH = '/graphql';

/**
 * graphql-ws (the graphql-transport-ws protocol) on /graphql of an HTTP server that is
 * already listening. Upgrades to any other path are refused.
 */
export function attachGraphqlWebSocket(httpServer: HttpServer, options: GraphqlWebSocketOptions): GraphqlWebSocket {
  const { schema, services, logger } = options;
  // noServer: upgrades are routed here by path, and a listen error is never re-emitted by ws.
  const webSocketServer = new WebSocketServer({ noServer: true });
  const documents = new DocumentCache(schema, { introspection: options.introspection });
  const formatError = options.introspection ? options.formatError : hidingSuggestions(options.formatError);
  const formatErrors = (errors: readonly GraphQLError[]) => errors.map((error) => formatError(error.toJSON(), error));

  const cleanup = useServer<Record<string, unknown>>(
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
      onConnect: ({ connectionParams }) => {
        if (!services.apiKeys.required || services.apiKeys.authenticate(connectionParams?.authorization) !== undefined) return true;
        logger.warn('WebSocket refused: missing or unknown API key');
        return false;
      },
      context: ({ extra }) =>
        options.contextFor(randomUUID(), (reason) => {
          logger.warn({ reason }, 'dropping a WebSocket connection');
          // terminate, not close: a client that stopped reading would never read a close frame.
          extra.socket.terminate();
        }),
    },
    webSocketServer,
  );
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = request.url?.split('?')[0];
    if (path !== GRAPHQL_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    webSocketServer.handleUpgrade(request, socket, head, (webSocket) => webSocketServer.emit('connection', webSocket, request));
  };
  httpServer.on('upgrade', onUpgrade);

  return {
    dispose: async () => {
      httpServer.off('upgrade', onUpgrade);
      await cleanup.dispose();
    },
  };
}
