#!/usr/bin/env node
// Bundles the self-hosted GraphiQL page (src/graphiql/app) and Monaco's web
// workers into dist/graphiql/. Everything comes from node_modules so the page
// works without internet access. Usage: node scripts/build-graphiql.mjs
import { build } from 'esbuild';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const started = performance.now();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist', 'graphiql');
const assetsDir = path.join(outDir, 'assets');
// Must match GRAPHIQL_ASSETS_PATH, where src/graphiql/graphiql.route.ts serves the assets (@fastify/static).
const publicPath = '/graphiql/assets/';

// Every emitted asset carries a content hash, which is what lets the router
// serve /graphiql/assets with immutable caching.
const common = {
  absWorkingDir: root,
  bundle: true,
  minify: true,
  platform: 'browser',
  // Monaco and GraphiQL 5 already require evergreen browsers.
  target: ['es2022', 'chrome111', 'firefox115', 'safari16.4', 'edge111'],
  define: { 'process.env.NODE_ENV': '"production"' },
  outdir: assetsDir,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  publicPath,
  loader: {
    '.ttf': 'file',
    '.woff': 'file',
    '.woff2': 'file',
    '.eot': 'file',
    '.svg': 'file',
    '.png': 'file',
  },
  metafile: true,
  logLevel: 'warning',
};

const workerEntries = {
  'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js',
  'json.worker': 'monaco-editor/esm/vs/language/json/json.worker.js',
  'graphql.worker': 'monaco-graphql/esm/graphql.worker.js',
};

/**
 * graphiql/style.css already ships Monaco's complete stylesheet (fonts inlined).
 * Monaco's ESM modules additionally `import` their own CSS files; with code
 * splitting those would land in per-chunk CSS files that nothing loads, so they
 * are dropped instead of duplicated.
 */
const dropMonacoCss = {
  name: 'drop-monaco-css',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /\.css$/ }, (args) => {
      const fromMonaco = args.importer.split(path.sep).join('/').includes('/node_modules/monaco-editor/');
      return fromMonaco ? { path: args.path, namespace: 'monaco-css' } : undefined;
    });
    pluginBuild.onLoad({ filter: /.*/, namespace: 'monaco-css' }, () => ({ contents: '', loader: 'css' }));
  },
};

/** Maps an entry name to the public URL of the file esbuild emitted for it. */
function entryUrls(metafile, names, extension) {
  const urls = {};
  for (const [outputPath, output] of Object.entries(metafile.outputs)) {
    if (!output.entryPoint || !outputPath.endsWith(extension)) continue;
    const base = path.basename(outputPath);
    const name = names.find((candidate) => base.startsWith(`${candidate}-`));
    if (name) urls[name] = publicPath + base;
  }
  for (const name of names) {
    if (!urls[name]) throw new Error(`esbuild emitted no ${extension} file for entry ${name}`);
  }
  return urls;
}

function cssBundleUrl(metafile, jsUrl) {
  const output = Object.entries(metafile.outputs).find(([outputPath]) => jsUrl.endsWith(path.basename(outputPath)));
  const cssBundle = output?.[1].cssBundle;
  if (!cssBundle) throw new Error('esbuild emitted no CSS for the GraphiQL app');
  return publicPath + path.basename(cssBundle);
}

function indexHtml(scriptUrl, styleUrl) {
  // No inline script or style: the page is served with a CSP that forbids them.
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <title>GraphiQL</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${styleUrl}" />
    <script type="module" src="${scriptUrl}"></script>
  </head>
  <body>
    <div id="graphiql"><p class="graphiql-boot">Loading GraphiQL…</p></div>
    <noscript>GraphiQL needs JavaScript.</noscript>
  </body>
</html>
`;
}

async function directorySize(dir) {
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    files += 1;
    bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return { files, bytes };
}

await rm(outDir, { recursive: true, force: true });
await mkdir(assetsDir, { recursive: true });

// Classic (IIFE) workers: module workers would work in current browsers too, but
// Monaco only needs a self-contained script and IIFE avoids sharing chunks with the page.
const workers = await build({
  ...common,
  entryPoints: workerEntries,
  format: 'iife',
});
const workerUrls = entryUrls(workers.metafile, Object.keys(workerEntries), '.js');

const app = await build({
  ...common,
  entryPoints: { main: 'src/graphiql/app/main.tsx' },
  format: 'esm',
  // GraphiQL loads Monaco and Prettier with dynamic import(); splitting keeps them out of the first script.
  splitting: true,
  chunkNames: 'chunk-[hash]',
  jsx: 'automatic',
  define: {
    ...common.define,
    GRAPHIQL_WORKER_URLS: JSON.stringify({
      editor: workerUrls['editor.worker'],
      json: workerUrls['json.worker'],
      graphql: workerUrls['graphql.worker'],
    }),
  },
  plugins: [dropMonacoCss],
});
// Chunks whose only CSS was Monaco's (dropped above) still get an empty stylesheet.
for (const [outputPath, output] of Object.entries(app.metafile.outputs)) {
  if (outputPath.endsWith('.css') && output.bytes === 0) await rm(path.join(root, outputPath));
}
const scriptUrl = entryUrls(app.metafile, ['main'], '.js').main;
await writeFile(path.join(outDir, 'index.html'), indexHtml(scriptUrl, cssBundleUrl(app.metafile, scriptUrl)));

const { files, bytes } = await directorySize(outDir);
const ms = Math.round(performance.now() - started);
console.log(`graphiql: built ${path.relative(root, outDir)} (${files} files, ${(bytes / 1048576).toFixed(1)} MiB) in ${ms} ms`);
