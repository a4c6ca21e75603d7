import fastifyCors from '@fastify/cors';
import type { FastifyInstance, RouteOptions } from 'fastify';

export interface CorsOptions {
  /** CORS_ORIGINS: the origins allowed, '*' for any, none (no CORS at all) when empty. */
  corsOrigins: string[] | '*';
}

/** The routes browser apps on other origins may call: the API, its schema and the exports. */
export const CORS_PATHS = ['/graphql', '/export/scans.csv', '/schema.graphql'];

/** Request headers a browser app on another origin may send. */
const CORS_ALLOWED_HEADERS = ['content-type', 'authorization', 'apollo-require-preflight', 'x-request-id'];

/**
 * CORS on GET, POST and the OPTIONS preflight of CORS_PATHS, for browser apps on the
 * origins of CORS_ORIGINS; nothing at all without them. Registered in the scope of those
 * routes only, so no other route (the webhook, /metrics) runs its hook. @fastify/cors
 * answers preflights on an OPTIONS * route of its own, and a route's path is not
 * encapsulated: that route is narrowed to each of CORS_PATHS here, and the scope's other
 * routes (GraphiQL's assets) left out. An origin not in the list gets no
 * Access-Control-Allow-* header (its preflight: 404). Keys travel in Authorization, so no
 * credentials; Apollo's CSRF prevention is unchanged.
 */
export async function registerCors(scope: FastifyInstance, { corsOrigins }: CorsOptions): Promise<void> {
  if (corsOrigins !== '*' && corsOrigins.length === 0) return;
  let preflight: RouteOptions | undefined;
  scope.addHook('onRoute', (route) => {
    if (route.method === 'OPTIONS' && route.url === '*') {
      preflight = { ...route };
      route.url = CORS_PATHS[0];
      route.path = CORS_PATHS[0];
    } else if (!CORS_PATHS.includes(route.url)) {
      route.config = { ...route.config, cors: false };
    }
  });
  const allowed = new Set(corsOrigins);
  await scope.register(fastifyCors, {
    // A function, so a refused origin gets no allow header at all (and Vary: Origin).
    origin: corsOrigins === '*' ? '*' : (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: ['GET', 'POST'],
    allowedHeaders: CORS_ALLOWED_HEADERS,
    credentials: false,
  });
  if (!preflight) throw new Error('@fastify/cors registered no preflight route');
  for (const path of CORS_PATHS.slice(1)) scope.route({ ...preflight, url: path, path } as RouteOptions);
}
