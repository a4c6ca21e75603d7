import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { builtPageSender, registerBuiltAssets, repositoryRoot } from '../graphiql/built-page';

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

  const sendPage = builtPageSender({ indexFile, csp: DASHBOARD_CSP, name: 'The dashboard' });

  return async (app) => {
    app.get('/dashboard', async (_request, reply) => sendPage(reply));

    await registerBuiltAssets(app, path.join(assetsDir, 'assets'), DASHBOARD_ASSETS_PATH);
  };
}
