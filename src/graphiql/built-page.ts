import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/*
 * A browser page the gateway serves from a bundle built at build time (GraphiQL, the
 * dashboard): its index.html with a strict CSP, and its hashed assets.
 */

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

// Duck-typed: `instanceof Error` is false for fs errors inside Jest's VM realms.
export function isMissingFile(error: unknown): boolean {
  if (typeof error !== 'object' || error === null || !('code' in error)) return false;
  return error.code === 'ENOENT' || error.code === 'ENOTDIR';
}

/**
 * Answers a built page's index.html (read per request: the page is tiny, and a rebuild is
 * picked up without a restart), or 503 saying how to build it. `headers` go on both.
 */
export function builtPageSender(page: {
  indexFile: string;
  csp: string;
  /** how the 503 names the page */
  name: string;
  headers?: Record<string, string>;
}): (reply: FastifyReply) => Promise<FastifyReply> {
  return async (reply) => {
    let html: string;
    try {
      html = await readFile(page.indexFile, 'utf8');
    } catch (error) {
      if (!isMissingFile(error)) throw error;
      return reply
        .code(503)
        .headers({ 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', ...page.headers })
        .send(`${page.name} is not built (${page.indexFile} is missing): run \`npm run build\`.\n`);
    }
    return reply
      .code(200)
      .headers({
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-cache',
        'Content-Security-Policy': page.csp,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        ...page.headers,
      })
      .send(html);
  };
}

/** Serves a bundle's files under `prefix`: hashed names cached for good, the others revalidated. */
export async function registerBuiltAssets(app: FastifyInstance, root: string, prefix: string): Promise<void> {
  await app.register(fastifyStatic, {
    root,
    prefix: `${prefix}/`,
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
}
