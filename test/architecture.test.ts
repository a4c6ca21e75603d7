/**
 * Imports point one way.
 *
 * Every file under src/ belongs to a node: its folder (the first path segment under
 * src/, e.g. `codes` for src/codes/providers/local.provider.ts), or, for a file directly
 * in src/, the file itself (`config.ts`, `errors.ts`, `context.ts`, `main.ts`). The
 * relative imports between files give a graph of nodes; it must have no cycle, and:
 *
 * - src/app is the composition root: nothing imports it except src/main.ts;
 * - the foundation (db, graphql, pagination, logging, metrics, redis, errors.ts, config.ts,
 *   context.ts, access.ts) imports no capability (codes, scans, webhook, images, pages, auth, export, stats, tracking, print, relay, dashboard, app).
 *
 * When one of these fails, the message lists the offending imports file by file: move
 * the shared piece down (into the foundation or the folder that owns it), or invert the
 * dependency with an interface that the lower folder declares and the upper one implements.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const SRC = path.join(ROOT, 'src');
/** Browser bundles built separately (esbuild), not part of the server's graph. */
const SKIPPED = [path.join(SRC, 'graphiql', 'app'), path.join(SRC, 'dashboard', 'app')];

const FOUNDATION = ['db', 'graphql', 'pagination', 'logging', 'metrics', 'redis', 'errors.ts', 'config.ts', 'context.ts', 'access.ts'];
const CAPABILITIES = [
  'codes',
  'scans',
  'webhook',
  'images',
  'pages',
  'auth',
  'export',
  'stats',
  'tracking',
  'print',
  'relay',
  'dashboard',
  'app',
];
const COMPOSITION_ROOT = 'app';
const ENTRY_POINT = 'src/main.ts';

// ---------------------------------------------------------------------------------------
// Reading imports

/**
 * The module specifiers a TypeScript file imports: `import … from '…'` (also `import type`,
 * default, namespace and named, over several lines), `import '…'`, `export … from '…'`
 * (also `export type`, `export *`), and `import('…')` / `require('…')` with a literal.
 * Statements must start a line, so examples in comments (` * import …`) do not count.
 */
function importSpecifiers(source: string): string[] {
  const withoutBlockComments = source.replace(/\/\*[\s\S]*?\*\//g, (comment) => comment.replace(/[^\n]/g, ' '));
  const name = String.raw`[\w$]+`;
  const braces = String.raw`\{[^}]*\}`;
  const namespace = String.raw`\*\s*as\s+${name}`;
  const importClause = String.raw`(?:${name}\s*,\s*(?:${braces}|${namespace})|${braces}|${namespace}|${name})`;
  const quoted = String.raw`['"]([^'"\n]+)['"]`;
  const patterns = [
    new RegExp(String.raw`^[ \t]*import\s+(?:type\s+)?${importClause}\s*from\s*${quoted}`, 'gm'),
    new RegExp(String.raw`^[ \t]*import\s*${quoted}`, 'gm'),
    new RegExp(String.raw`^[ \t]*export\s+(?:type\s+)?(?:\*(?:\s*as\s+${name})?|${braces})\s*from\s*${quoted}`, 'gm'),
    new RegExp(String.raw`(?:^|[^\w$.])(?:import|require)\s*\(\s*${quoted}\s*\)`, 'gm'),
  ];
  const specifiers: string[] = [];
  for (const pattern of patterns) {
    for (const match of withoutBlockComments.matchAll(pattern)) specifiers.push(match[1]);
  }
  return specifiers;
}

function listTsFiles(directory: string): string[] {
  if (SKIPPED.includes(directory)) return [];
  return readdirSync(directory).flatMap((entry) => {
    const full = path.join(directory, entry);
    if (statSync(full).isDirectory()) return listTsFiles(full);
    return /\.tsx?$/.test(entry) && !entry.endsWith('.d.ts') ? [full] : [];
  });
}

/** The file a relative specifier names, as TypeScript resolves it here; undefined if none. */
function resolveImport(fromFile: string, specifier: string): string | undefined {
  const target = path.resolve(path.dirname(fromFile), specifier);
  const withoutJs = target.replace(/\.(c|m)?js$/, '');
  const candidates = [target, `${withoutJs}.ts`, `${withoutJs}.tsx`, path.join(target, 'index.ts'), path.join(target, 'index.tsx')];
  return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

/** The node of a file: its first folder under src/, or the file itself when directly in src/. */
function nodeOf(file: string): string {
  return path.relative(SRC, file).split(path.sep)[0];
}

const rel = (file: string) => path.relative(ROOT, file).split(path.sep).join('/');

interface Import {
  from: string;
  to: string;
  specifier: string;
}

function readImports() {
  const files = listTsFiles(SRC);
  const imports: Import[] = [];
  const unresolved: string[] = [];
  for (const file of files) {
    for (const specifier of importSpecifiers(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const target = resolveImport(file, specifier);
      if (target === undefined) unresolved.push(`${rel(file)}: '${specifier}'`);
      else imports.push({ from: file, to: target, specifier });
    }
  }
  return { files, imports, unresolved };
}

// ---------------------------------------------------------------------------------------
// The graph of nodes

/** node → node → the imports that make that edge (the first is the example shown). */
type Graph = Map<string, Map<string, Import[]>>;

function nodeGraph(imports: Import[]): Graph {
  const graph: Graph = new Map();
  for (const entry of imports) {
    if (!entry.to.startsWith(SRC + path.sep)) continue;
    const from = nodeOf(entry.from);
    const to = nodeOf(entry.to);
    if (from === to) continue;
    if (!graph.has(from)) graph.set(from, new Map());
    const edges = graph.get(from)!;
    if (!edges.has(to)) edges.set(to, []);
    edges.get(to)!.push(entry);
  }
  return graph;
}

/** Strongly connected components with more than one node (Tarjan): each holds at least one cycle. */
function cyclicComponents(graph: Graph): string[][] {
  const nodes = new Set<string>([...graph.keys(), ...[...graph.values()].flatMap((edges) => [...edges.keys()])]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  let counter = 0;
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...nodes].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** A shortest cycle through `start` inside `component` (breadth-first), as a list of nodes. */
function shortestCycle(graph: Graph, component: string[], start: string): string[] {
  const inside = new Set(component);
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of [...(graph.get(node)?.keys() ?? [])].sort()) {
      if (!inside.has(next)) continue;
      if (next === start) {
        const cycle = [node];
        while (cycle[0] !== start) cycle.unshift(previous.get(cycle[0])!);
        return [...cycle, start];
      }
      if (!previous.has(next)) {
        previous.set(next, node);
        queue.push(next);
      }
    }
  }
  return [];
}

function describeEdge(graph: Graph, from: string, to: string): string {
  const imports = graph.get(from)!.get(to)!;
  const example = imports[0];
  const more = imports.length > 1 ? ` (and ${imports.length - 1} more)` : '';
  return `  ${from} → ${to}: ${rel(example.from)} imports ${rel(example.to)}${more}`;
}

function describeCycles(graph: Graph): string {
  return cyclicComponents(graph)
    .map((component) => {
      const cycle = shortestCycle(graph, component, component[0]);
      const edges = cycle.slice(0, -1).map((node, i) => describeEdge(graph, node, cycle[i + 1]));
      return [`cycle ${cycle.join(' → ')} (folders in this knot: ${component.join(', ')})`, ...edges].join('\n');
    })
    .join('\n\n');
}

function describeImports(imports: Import[]): string {
  return imports.map((entry) => `  ${rel(entry.from)} imports ${rel(entry.to)} ('${entry.specifier}')`).join('\n');
}

// ---------------------------------------------------------------------------------------

describe('reading imports', () => {
  it('finds every form of import and export, over several lines, and nothing in comments or strings', () => {
    const source = [
      "import { a } from './a';",
      "import type { B } from '../b';",
      'import {',
      '  c,',
      '  type C,',
      "} from './c';",
      "import d, { e } from './d';",
      "import * as f from './f';",
      "import g from './g'",
      "import './h';",
      "export { i } from './i';",
      "export type { J } from './j';",
      "export * from './k';",
      "export * as l from './l';",
      "const m = require('./m');",
      "const n = await import('./n');",
      "import pino from 'pino';",
      "// import { x } from './commented';",
      '/*',
      " import { y } from './block-commented';",
      ' */',
      "/** e.g. import { z } from './doc'; */",
      'const text = "import { w } from \'./in-a-string\'";',
      "this.pages.require(context, './not-a-module');",
      "export const o = 1; // from './not-an-export'",
    ].join('\n');
    expect(importSpecifiers(source).sort()).toEqual(
      ['./a', '../b', './c', './d', './f', './g', './h', './i', './j', './k', './l', './m', './n', 'pino'].sort(),
    );
  });

  it('finds a cycle and names one import per edge', () => {
    const file = (name: string) => path.join(SRC, name);
    const graph = nodeGraph([
      { from: file('codes/a.ts'), to: file('scans/b.ts'), specifier: '../scans/b' },
      { from: file('scans/b.ts'), to: file('webhook/c.ts'), specifier: '../webhook/c' },
      { from: file('webhook/c.ts'), to: file('codes/d.ts'), specifier: '../codes/d' },
      { from: file('webhook/c.ts'), to: file('errors.ts'), specifier: '../errors' },
      { from: file('codes/a.ts'), to: file('codes/d.ts'), specifier: './d' },
    ]);
    expect(cyclicComponents(graph)).toEqual([['codes', 'scans', 'webhook']]);
    expect(describeCycles(graph)).toBe(
      [
        'cycle codes → scans → webhook → codes (folders in this knot: codes, scans, webhook)',
        '  codes → scans: src/codes/a.ts imports src/scans/b.ts',
        '  scans → webhook: src/scans/b.ts imports src/webhook/c.ts',
        '  webhook → codes: src/webhook/c.ts imports src/codes/d.ts',
      ].join('\n'),
    );
    expect(cyclicComponents(nodeGraph([{ from: file('codes/a.ts'), to: file('errors.ts'), specifier: '../errors' }]))).toEqual([]);
  });
});

describe('imports point one way', () => {
  const { files, imports, unresolved } = readImports();
  const graph = nodeGraph(imports);

  it('reads the whole of src/ (a broken reader must not pass by seeing nothing)', () => {
    const nodes = new Set(files.map(nodeOf));
    for (const expected of [...FOUNDATION, ...CAPABILITIES, 'main.ts']) expect(nodes).toContain(expected);
    expect(files.filter((file) => SKIPPED.some((skipped) => file.startsWith(skipped)))).toEqual([]);
    expect(imports.length).toBeGreaterThan(100);
    // A known edge: the scans folder reads codes through the code wire format.
    expect(graph.get('scans')?.has('codes')).toBe(true);
    expect(graph.get('main.ts')?.has('app')).toBe(true);
  });

  it('every relative import resolves to a file', () => {
    expect(unresolved).toEqual([]);
  });

  it('the folder graph has no cycle', () => {
    const cycles = describeCycles(graph);
    if (cycles !== '') {
      throw new Error(
        `Imports go round in a circle between folders of src/:\n\n${cycles}\n\nMove what both sides need into the lower folder (or the foundation), so that imports point one way.`,
      );
    }
  });

  it('nothing imports src/app except src/main.ts (app is the composition root)', () => {
    const offending = imports.filter(
      (entry) => nodeOf(entry.to) === COMPOSITION_ROOT && nodeOf(entry.from) !== COMPOSITION_ROOT && rel(entry.from) !== ENTRY_POINT,
    );
    if (offending.length > 0) {
      throw new Error(`src/app wires the gateway together; only ${ENTRY_POINT} may import it:\n${describeImports(offending)}`);
    }
  });

  it.each(FOUNDATION)('the foundation %s imports no capability folder', (node) => {
    const offending = imports.filter((entry) => nodeOf(entry.from) === node && CAPABILITIES.includes(nodeOf(entry.to)));
    if (offending.length > 0) {
      throw new Error(
        `${node} is foundation: it must not import ${CAPABILITIES.join(', ')}:\n${describeImports(offending)}\n` +
          'Move the piece it needs into the foundation, or have the capability hand it in (a parameter or an interface declared here).',
      );
    }
  });
});

// ---------------------------------------------------------------------------------------
// Reads of page-owned tables
//
// A scoped key must never see another page's rows, counts or sums, whichever resolver,
// nested field, total, subscription or route reads them. So page-owned tables are read
// only through PageScope.table (an Access's scope), which narrows the table itself; a
// query can then count, join or sum what it likes. Any other read (SQL naming such a table
// after FROM or JOIN, or a TypeORM read of its entity) fails below unless a
// `page-scope exempt: <reason>` comment stands on one of the lines just above it, and the
// exemptions per file are pinned in EXEMPTIONS: a new one is a visible change to this file.
// A table name reached through a variable is beyond this reader: names stay literal.

import { PAGE_OWNED_TABLES } from '../src/access';

/** Lines above a read where its exemption may stand (a statement's first line and its comment). */
const EXEMPTION_REACH = 6;
const EXEMPTION = /page-scope exempt: \S.{10,}/;

/** The gateway's own reads, not a request's: each names its reason where it stands. */
const EXEMPTIONS: Record<string, number> = {
  // the webhook's ingest: the pages are the signed events' own
  'src/scans/scan.store.ts': 1,
  // rollup folds and their backfill: the gateway's own bookkeeping
  'src/stats/scan-rollups.ts': 2,
  // a REDIRECT visit is counted for the code its slug (the capability) names
  'src/tracking/visit-counter.ts': 1,
  // a code's write, in its transaction, after the page was checked
  'src/codes/code.service.ts': 2,
  // code styles and SVG ids of codes the request already read through its scope, by their ids
  'src/codes/code-style.store.ts': 1,
  'src/images/image.store.ts': 2,
  // a print sheet lists its pages; the scope is checked against all of them
  'src/print/print-sheet.service.ts': 1,
  // the page registry's own work: tokens, relays, registration, removal, key validation
  'src/pages/page.service.ts': 12,
};

interface PageOwnedRead {
  line: number;
  text: string;
  exempt: boolean;
}

/** Entity class names of page-owned tables, from their @Entity({ name }) decorators. */
function pageOwnedEntities(files: string[]): string[] {
  const owned = new Set(Object.keys(PAGE_OWNED_TABLES));
  const entities: string[] = [];
  for (const file of files) {
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/@Entity\(\{\s*name:\s*'(\w+)'\s*\}\)\s*export class (\w+)/g)) {
      if (owned.has(match[1])) entities.push(match[2]);
    }
  }
  return entities;
}

/** The reads of page-owned tables in a source text that do not go through PageScope.table. */
function pageOwnedReads(source: string, entities: readonly string[]): PageOwnedRead[] {
  const tables = Object.keys(PAGE_OWNED_TABLES).join('|');
  const sql = new RegExp(String.raw`(?<!DELETE\s+)\b(?:FROM|JOIN)\s+"?(?:${tables})\b(?!\s*\()`);
  const typeorm = new RegExp(
    String.raw`\b(?:createQueryBuilder|getRepository|findOneBy|findOneByOrFail|findOne|findOneOrFail|findBy|find|findAndCount|findAndCountBy|count|countBy|exists|existsBy|sum|average|minimum|maximum)\(\s*(?:${entities.join('|') || '$^'})\b`,
  );
  const lines = source.split('\n');
  const reads: PageOwnedRead[] = [];
  lines.forEach((text, index) => {
    const code = text.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
    if (!sql.test(code) && !typeorm.test(code)) return;
    const above = lines.slice(Math.max(0, index - EXEMPTION_REACH), index + 1);
    reads.push({ line: index + 1, text: text.trim(), exempt: above.some((line) => EXEMPTION.test(line)) });
  });
  return reads;
}

describe('reads of page-owned tables', () => {
  const files = listTsFiles(SRC).filter((file) => !file.includes(`${path.sep}migrations${path.sep}`));
  const entities = pageOwnedEntities(files);

  it('finds the entities of page-owned tables', () => {
    expect(entities).toEqual(expect.arrayContaining(['Code', 'Scan', 'PageRow', 'CodeImageRow']));
  });

  it('tells a scoped read from an unscoped one, and an exempt one from a forgotten one', () => {
    const reads = (source: string) => pageOwnedReads(source, entities).map(({ line, exempt }) => ({ line, exempt }));
    expect(reads('db.read(`SELECT COUNT(*) FROM code WHERE page_id = ?`)')).toEqual([{ line: 1, exempt: false }]);
    expect(reads('`SELECT s.id FROM b JOIN scan s ON s.id = b.id`')).toEqual([{ line: 1, exempt: false }]);
    expect(reads('`SELECT * FROM scan_rollup_pending d`')).toEqual([{ line: 1, exempt: false }]);
    expect(reads('manager.findOneBy(Code, { id })')).toEqual([{ line: 1, exempt: false }]);
    expect(reads("this.db.manager.createQueryBuilder(PageRow, 'page')")).toEqual([{ line: 1, exempt: false }]);
    expect(reads('// page-scope exempt: the write of this very row, in its transaction\nmanager.findOneBy(Code, { id })')).toEqual([
      { line: 2, exempt: true },
    ]);
    // Through the scope, writes, other tables, comments: not reads of page-owned tables.
    expect(reads("`SELECT COUNT(*) FROM ${scope.table('code', bind)} WHERE ref = ?`")).toEqual([]);
    expect(reads('`DELETE FROM scan WHERE page_id = $1`')).toEqual([]);
    expect(reads('`INSERT INTO code_visit (code_id, at, visits) VALUES (?, ?, ?)`')).toEqual([]);
    expect(reads('`SELECT id FROM api_key WHERE secret_hash = ?`')).toEqual([]);
    expect(reads('`SELECT id FROM codes_of_mine`')).toEqual([]);
    expect(reads(' * reads FROM code once per request')).toEqual([]);
  });

  it('reads page-owned tables only through PageScope.table, or with the exemptions pinned here', () => {
    const forgotten: string[] = [];
    const exemptions: Record<string, number> = {};
    for (const file of files) {
      if (file === path.join(SRC, 'access.ts')) continue;
      for (const read of pageOwnedReads(readFileSync(file, 'utf8'), entities)) {
        if (read.exempt) exemptions[rel(file)] = (exemptions[rel(file)] ?? 0) + 1;
        else forgotten.push(`${rel(file)}:${read.line}: ${read.text}`);
      }
    }
    if (forgotten.length > 0) {
      throw new Error(
        `Reads of page-owned tables outside PageScope.table (a scoped key would see other pages' rows):\n${forgotten.join('\n')}\n` +
          "Read them through FROM ${context.access.scope.table(…)} (or readScope), or, for the gateway's own work, put " +
          '"page-scope exempt: <why no request can see other pages through it>" above the read and count it in EXEMPTIONS.',
      );
    }
    expect(exemptions).toEqual(EXEMPTIONS);
  });
});
