'use strict';
/**
 * A CommonJS require hook that compiles TypeScript on the fly with SWC, so tests can run
 * the real entry point as its own process without a build:
 *
 *   node -r ./test/support/run-ts.js src/main.ts
 *
 * Same settings as jest's transform: legacy decorators with their metadata (type-graphql and
 * TypeORM read it), CommonJS output, inline source maps so stack traces point at the .ts lines.
 */
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { transformSync } = require('@swc/core');

process.setSourceMapsEnabled(true);

function compileTypeScript(module, filename) {
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    swcrc: false,
    configFile: false,
    sourceMaps: 'inline',
    module: { type: 'commonjs' },
    jsc: {
      parser: { syntax: 'typescript', decorators: true, tsx: filename.endsWith('.tsx') },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
  });
  module._compile(code, filename);
}

// Registering the extensions also lets require('./config') resolve to config.ts.
Module._extensions['.ts'] = compileTypeScript;
Module._extensions['.tsx'] = compileTypeScript;
