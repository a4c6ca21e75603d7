import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { builtPageSender, registerBuiltAssets, repositoryRoot } from './built-page';

/** URL prefix of the bundle; scripts/build-graphiql.mjs writes the same prefix into index.html. */
export const GRAPHIQL_ASSETS_PATH = '/graphiql/assets';

export interface GraphiqlRoutesOptions {
  /** Output of scripts/build-graphiql.mjs (index.html + assets/). Default: `<repo>/dist/graphiql`. */
  assetsDir?: string;
  /**
   * Answers GET /graphql when it is not a browser navigation (the GraphQL API itself);
   * without it such requests get 404.
   */
  api?: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}

/**
 * Monaco injects <style> elements at runtime, hence 'unsafe-inline' for styles
 * only; scripts stay 'self'. GraphiQL's fonts are data: URLs inside its CSS.
 * ws:/wss: are listed because 'self' does not cover WebSocket schemes in every
 * browser still in use.
 */
export const GRAPHIQL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "worker-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

export function defaultGraphiqlAssetsDir(): string {
  return path.join(repositoryRoot(__dirname), 'dist', 'graphiql');
}

/**
 * True for a browser navigation to the endpoint. A GET carrying `query` is a
 * GraphQL-over-HTTP request even from a browser tab and belongs to the API.
 */
function isBrowserNavigation(request: FastifyRequest): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  if (new URL(request.url, 'http://localhost').searchParams.has('query')) return false;
  return acceptsHtmlExplicitly(request.headers.accept);
}

/** `*\/*` alone (curl, fetch) does not count: only clients asking for HTML by name get the page. */
function acceptsHtmlExplicitly(accept: string | undefined): boolean {
  if (!accept) return false;
  return accept.split(',').some((part) => {
    const [type, ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    if (type !== 'text/html') return false;
    const q = params.find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * The self-hosted GraphiQL: the page on browser navigations to GET /graphql, its
 * bundle under /graphiql/assets. Every other GET /graphql goes to `options.api`.
 */
export function graphiqlRoutes(options: GraphiqlRoutesOptions = {}): FastifyPluginAsync {
  const assetsDir = path.resolve(options.assetsDir ?? defaultGraphiqlAssetsDir());
  const indexFile = path.join(assetsDir, 'index.html');

  const sendPage = builtPageSender({
    indexFile,
    csp: GRAPHIQL_CSP,
    name: 'GraphiQL',
    // The same URL answers JSON to API clients; caches must keep both apart.
    headers: { Vary: 'Accept' },
  });

  return async (app) => {
    app.get('/graphql', async (request, reply) => {
      if (isBrowserNavigation(request)) return sendPage(reply);
      if (options.api) return options.api(request, reply);
      return reply.code(404).send();
    });

    await registerBuiltAssets(app, path.join(assetsDir, 'assets'), GRAPHIQL_ASSETS_PATH);
  };
}
