#!/usr/bin/env node
// Bundles the dashboard (src/dashboard/app: Preact, uPlot, graphql-ws and the typed client of
// client/generated) into dist/dashboard/. Everything comes from node_modules, so the page
// works without internet access. Usage: node scripts/build-dashboard.mjs
import { build } from 'esbuild';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const started = performance.now();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outDir = path.join(root, 'dist', 'dashboard');
const assetsDir = path.join(outDir, 'assets');
// Must match DASHBOARD_ASSETS_PATH, where src/dashboard/dashboard.route.ts serves the assets.
const publicPath = '/dashboard/assets/';

await rm(outDir, { recursive: true, force: true });
await mkdir(assetsDir, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { dashboard: 'src/dashboard/app/main.tsx' },
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome111', 'firefox115', 'safari16.4', 'edge111'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  define: { 'process.env.NODE_ENV': '"production"' },
  outdir: assetsDir,
  // The content hash lets the route serve the assets with immutable caching.
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  publicPath,
  metafile: true,
  logLevel: 'warning',
});

const entry = Object.entries(result.metafile.outputs).find(([file, output]) => output.entryPoint && file.endsWith('.js'));
if (!entry?.[1].cssBundle) throw new Error('esbuild emitted no script or no stylesheet for the dashboard');
const scriptUrl = publicPath + path.basename(entry[0]);
const styleUrl = publicPath + path.basename(entry[1].cssBundle);

// No inline script or style: the page is served with a CSP that forbids them.
await writeFile(
  path.join(outDir, 'index.html'),
  `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="robots" content="noindex" />
    <meta name="color-scheme" content="light dark" />
    <title>Scan dashboard</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${styleUrl}" />
    <script type="module" src="${scriptUrl}"></script>
  </head>
  <body>
    <div id="dashboard"><p class="boot">Loading the dashboard…</p></div>
    <noscript>The dashboard needs JavaScript.</noscript>
  </body>
</html>
`,
);

let files = 0;
let bytes = 0;
for (const file of await readdir(outDir, { withFileTypes: true, recursive: true })) {
  if (!file.isFile()) continue;
  files += 1;
  bytes += (await stat(path.join(file.parentPath, file.name))).size;
}
const ms = Math.round(performance.now() - started);
console.log(`dashboard: built ${path.relative(root, outDir)} (${files} files, ${(bytes / 1024).toFixed(0)} KiB) in ${ms} ms`);
