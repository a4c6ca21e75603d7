import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

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

// esbuild's [hash]: 8 characters of base32 before the extension.
export const HASHED_ASSET = /-[A-Z2-7]{8}\.[a-z0-9]+$/;

/**
 * The repository root is the nearest ancestor with package.json and node_modules,
 * so the default works both from src/graphiql (ts-jest/swc) and dist/src/graphiql
 * (after tsc, which may also have copied a package.json into dist/).
 */
export function repositoryRoot(from: string): string {
  let firstWithPackageJson: string | undefined;
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) {
      if (existsSync(path.join(dir, 'node_modules'))) return dir;
      firstWithPackageJson ??= dir;
    }
    if (path.dirname(dir) === dir) return firstWithPackageJson ?? path.resolve(from, '..', '..');
  }
}

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

// Duck-typed: `instanceof Error` is false for fs errors inside Jest's VM realms.
export function isMissingFile(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  return error.code === 'ENOENT' || error.code === 'ENOTDIR';
}

/**
 * The self-hosted GraphiQL: the page on browser navigations to GET /graphql, its
 * bundle under /graphiql/assets. Every other GET /graphql goes to `options.api`.
 */
export function graphiqlRoutes(options: GraphiqlRoutesOptions = {}): FastifyPluginAsync {
  const assetsDir = path.resolve(options.assetsDir ?? defaultGraphiqlAssetsDir());
  const indexFile = path.join(assetsDir, 'index.html');

  const sendPage = async (reply: FastifyReply): Promise<FastifyReply> => {
    let html: string;
    try {
      // Read per request: the page is tiny, and a rebuild is picked up without a restart.
      html = await readFile(indexFile, 'utf8');
    } catch (error) {
      if (!isMissingFile(error)) throw error;
      return reply
        .code(503)
        .headers({ 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', Vary: 'Accept' })
        .send(`GraphiQL is not built (${indexFile} is missing): run \`npm run build\`.\n`);
    }
    return reply
      .code(200)
      .headers({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': GRAPHIQL_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        // The same URL answers JSON to API clients; caches must keep both apart.
        Vary: 'Accept',
      })
      .send(html);
  };

  return async (app) => {
    app.get('/graphql', async (request, reply) => {
      if (isBrowserNavigation(request)) return sendPage(reply);
      if (options.api) return options.api(request, reply);
      return reply.code(404).send();
    });

    await app.register(fastifyStatic, {
      root: path.join(assetsDir, 'assets'),
      prefix: `${GRAPHIQL_ASSETS_PATH}/`,
      index: false,
      redirect: false,
      // Several gateways may run in one process (tests); nothing else uses reply.sendFile.
      decorateReply: false,
      // Cache-Control is decided per file below.
      cacheControl: false,
      setHeaders(res, filePath) {
        res.setHeader('Cache-Control', HASHED_ASSET.test(path.basename(filePath)) ? 'public, max-age=31536000, immutable' : 'no-cache');
        res.setHeader('X-Content-Type-Options', 'nosniff');
      },
    });
  };
}
