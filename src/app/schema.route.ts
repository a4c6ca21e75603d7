import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Access } from '../access';
import { ifNoneMatchIncludes } from '../images/capability-url';
import { printGatewaySchema } from './schema';

/**
 * GET /schema.graphql: the schema as SDL, for code generators and frontend tooling (the
 * same text as schema/schema.graphql). Held to what introspection is: off with
 * GRAPHQL_INTROSPECTION=false (404), and behind a key once the gateway has one (401).
 */
export function schemaRoutes(options: {
  introspection: boolean;
  authenticate: (authorization: unknown) => Promise<Access | undefined>;
}): FastifyPluginAsync {
  const sdl = printGatewaySchema();
  const etag = `"${createHash('sha256').update(sdl).digest('hex')}"`;
  return async (app) => {
    app.get('/schema.graphql', async (request, reply) => {
      if (!options.introspection)
        return reply.code(404).type('text/plain; charset=utf-8').send('Introspection is off (GRAPHQL_INTROSPECTION=false).\n');
      if (!(await options.authenticate(request.headers.authorization))) {
        return reply
          .code(401)
          .header('WWW-Authenticate', 'Bearer')
          .type('text/plain; charset=utf-8')
          .send('A valid API key is required: send "Authorization: Bearer <key>".\n');
      }
      reply.headers({ ETag: etag, 'Cache-Control': 'no-cache' });
      if (ifNoneMatchIncludes(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.type('text/plain; charset=utf-8').send(sdl);
    });
  };
}
