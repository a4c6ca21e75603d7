import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { HASHED_ASSET, isMissingFile, repositoryRoot } from '../graphiql/graphiql.route';

/** URL prefix of the bundle; scripts/build-dashboard.mjs writes the same prefix into index.html. */
export const DASHBOARD_ASSETS_PATH = '/dashboard/assets';

/**
 * Nothing but the gateway: scripts, styles and data from this origin only, no inline script
 * or style element (Preact and uPlot set styles through the DOM, which CSP allows). ws:/wss:
 * are listed because 'self' does not cover WebSocket schemes in every browser still in use.
 */
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'self'",
].join('; ');

export function defaultDashboardAssetsDir(): string {
  return path.join(repositoryRoot(__dirname), 'dist', 'dashboard');
}

/**
 * GET /dashboard and its bundle under /dashboard/assets. The page itself needs no key: it
 * asks for one, and every piece of data comes from /graphql, behind the key as always.
 */
export function dashboardRoutes(options: { assetsDir?: string } = {}): FastifyPluginAsync {
  const assetsDir = path.resolve(options.assetsDir ?? defaultDashboardAssetsDir());
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
        .headers({ 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
        .send(`The dashboard is not built (${indexFile} is missing): run \`npm run build\`.\n`);
    }
    return reply
      .code(200)
      .headers({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': DASHBOARD_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
      })
      .send(html);
  };

  return async (app) => {
    app.get('/dashboard', async (_request, reply) => sendPage(reply));

    await app.register(fastifyStatic, {
      root: path.join(assetsDir, 'assets'),
      prefix: `${DASHBOARD_ASSETS_PATH}/`,
      index: false,
      redirect: false,
      // Several gateways may run in one process (tests); nothing else uses reply.sendFile.
      decorateReply: false,
      cacheControl: false,
      setHeaders(res, filePath) {
        res.setHeader('Cache-Control', HASHED_ASSET.test(path.basename(filePath)) ? 'public, max-age=31536000, immutable' : 'no-cache');
        res.setHeader('X-Content-Type-Options', 'nosniff');
      },
    });
  };
}
