import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { printGatewaySchema } from '../src/app/schema';

const root = join(__dirname, '..');

describe('schema/schema.graphql', () => {
  it('is exactly what the code emits (run `npm run build` to refresh it)', () => {
    const committed = readFileSync(join(root, 'schema', 'schema.graphql'), 'utf8');
    expect(printGatewaySchema()).toBe(committed);
  });
});

describe('test/generated/graphql.ts', () => {
  it('is what `npm run codegen` generates from the schema and test/operations', () => {
    // The codegen CLI loads ESM that jest cannot: it runs in its own process, in check mode.
    const check = spawnSync(
      process.execPath,
      [join(root, 'node_modules', '@graphql-codegen', 'cli', 'cjs', 'bin.js'), '--config', 'codegen.yml', '--check'],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    expect({ status: check.status, stale: /stale files/.test(check.stdout + check.stderr) }).toEqual({ status: 0, stale: false });
  });
});
