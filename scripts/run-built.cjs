'use strict';
/**
 * `npm start` and `npm run scan` run the compiled JavaScript in dist/ (built by
 * `npm install`, through the prepare script). When it is missing, say what to do
 * instead of printing a module-not-found stack trace.
 *
 *   node scripts/run-built.cjs <path inside dist/> [arguments…]
 */
const { existsSync } = require('node:fs');
const path = require('node:path');

const target = path.join(__dirname, '..', 'dist', process.argv[2] ?? '');
if (!process.argv[2] || !existsSync(target)) {
  process.stderr.write(
    `${path.relative(process.cwd(), target) || 'dist'} is missing: build first with \`npm run build\` (npm install builds too).\n`,
  );
  process.exit(1);
}
// The program sees its own arguments only, as if started directly.
process.argv.splice(2, 1);
require(target);
