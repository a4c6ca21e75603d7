import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { fastifyApolloHandler } from '@as-integrations/fastify';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { Access } from '../access';
import { UnauthenticatedError } from '../errors';
import { graphiqlRoutes } from '../graphiql/graphiql.route';
import { hidingSuggestions, OperationLimitsGate } from '../graphql/operation-limits';
import type { GraphQLContext } from './graphql-context';
import type { Services } from './services';

/** Largest GraphQL request body: room for a center image of 1 MiB once base64-encoded (4/3 of it), and its query. */
const MAX_GRAPHQL_BODY_BYTES = 2 * 1024 * 1024;

export interface GraphqlHttpOptions {
  schema: GraphQLSchema;
  introspection: boolean;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  services: Services;
  contextFor: (requestId: string, access: Access) => GraphQLContext;
}

/** The error formatter of both routes: graphql's "Did you mean …?" hints go with introspection. */
function formatErrorOf(options: GraphqlHttpOptions): GraphqlHttpOptions['formatError'] {
  return options.introspection ? options.formatError : hidingSuggestions(options.formatError);
}

/**
 * Apollo Server for GraphQL over HTTP; started here, stopped by the gateway. The operation
 * limits are not among its validation rules: Apollo runs those in the same pass as graphql's
 * own, and a refused document must not reach those (see OperationLimitsGate in graphqlHttpRoutes).
 */
export async function startApollo(options: GraphqlHttpOptions): Promise<ApolloServer<GraphQLContext>> {
  const apollo = new ApolloServer<GraphQLContext>({
    schema: options.schema,
    introspection: options.introspection,
    // main.ts owns the signals: Apollo re-raising them would kill the process mid-stop.
    stopOnTerminationSignals: false,
    formatError: formatErrorOf(options),
    // Internal errors are logged with their stack; clients only ever need the message and code.
    includeStacktraceInErrorResponses: false,
    plugins: [
      // Browsers get the self-hosted GraphiQL, never a CDN page.
      ApolloServerPluginLandingPageDisabled(),
      // No HTTP cache hints are used; the default plugin would wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
    ],
  });
  await apollo.start();
  return apollo;
}

const UTF8_CHARSET = /^(utf-?8)$/i;

/** A body the client got wrong, with its 4xx status. */
class BadRequestBody extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

function badRequest(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ errors: [{ message, extensions: { code: 'BAD_REQUEST' } }] });
}

/** The query text of a GET or of a single (not batched) JSON POST; anything else is Apollo's to refuse. */
function queryOf(request: FastifyRequest): string | undefined {
  const params = request.method === 'GET' ? request.query : request.body;
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return undefined;
  const query = (params as { query?: unknown }).query;
  return typeof query === 'string' ? query : undefined;
}

const GRAPHQL_RESPONSE_JSON = 'application/graphql-response+json';

/**
 * GET and POST /graphql (the API, behind the API key when one is configured) and the
 * GraphiQL page with its assets. Body parsing is this plugin's own: JSON in UTF-8, and
 * any other type passed to Apollo as text so its CSRF prevention can refuse it.
 */
export function graphqlHttpRoutes(apollo: ApolloServer<GraphQLContext>, options: GraphqlHttpOptions): FastifyPluginAsync {
  const { apiKeys } = options.services;
  // Who each request is, from authentication (below) to Apollo's context function.
  const accessOf = new WeakMap<FastifyRequest, Access>();
  const execute = fastifyApolloHandler(apollo, {
    // Set by `api` below before Apollo runs: every request through here was authenticated.
    context: async (request) => options.contextFor(request.id, accessOf.get(request) as Access),
  });
  const limits = new OperationLimitsGate(options.schema);
  const formatError = formatErrorOf(options);
  const api = async (request: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    let access: Access | undefined;
    try {
      access = await apiKeys.authenticate(request.headers.authorization);
    } catch (error) {
      // The database is away: nothing can be decided about the key, so nothing runs.
      request.log.error({ err: error }, 'could not authenticate a GraphQL request');
      return reply.code(503).send({ errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
    }
    if (!access) {
      const error = new UnauthenticatedError();
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer')
        .send({ errors: [{ message: error.message, extensions: { code: 'UNAUTHENTICATED' } }] });
    }
    accessOf.set(request, access);
    // The operation limits, before Apollo parses and validates: a refused operation is
    // answered here, as Apollo answers a validation error, and nothing of it runs.
    const query = queryOf(request);
    const refusal = query === undefined ? undefined : limits.refusal(query);
    if (refusal) {
      const accept = request.headers.accept ?? '';
      return reply
        .code(400)
        .type(`${accept.includes(GRAPHQL_RESPONSE_JSON) ? GRAPHQL_RESPONSE_JSON : 'application/json'}; charset=utf-8`)
        .send({ errors: refusal.map((error) => formatError(error.toJSON(), error)) });
    }
    return execute.call(reply.server, request, reply);
  };

  return async (app) => {
    const parseJson = app.getDefaultJsonParser('error', 'error');
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_GRAPHQL_BODY_BYTES }, (request, body, done) => {
      const charset = /;\s*charset=([^;\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1]?.replace(/"/g, '');
      if (charset !== undefined && !UTF8_CHARSET.test(charset)) {
        done(new BadRequestBody(415, `Unsupported charset "${charset}": send UTF-8.`), undefined);
        return;
      }
      parseJson(request, body as string, done);
    });
    app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: MAX_GRAPHQL_BODY_BYTES }, (_request, body, done) => done(null, body));
    app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
      // Body parsing: malformed JSON 400, too large 413, charset 415.
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        return badRequest(
          reply,
          error.statusCode,
          error instanceof BadRequestBody || error.statusCode !== 400 ? error.message : 'Malformed JSON body.',
        );
      }
      request.log.error({ err: error }, 'unexpected error in GraphQL over HTTP');
      return reply.code(500).type('text/plain; charset=utf-8').send('Internal server error.\n');
    });

    await app.register(graphiqlRoutes({ api }));
    app.post('/graphql', api);
  };
}
