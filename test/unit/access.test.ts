import Sqlite from 'better-sqlite3';
import { GraphQLError } from 'graphql';
import { Access, PAGE_OWNED_TABLES, Role, type Capability, type PageScope } from '../../src/access';
import { ForbiddenError } from '../../src/errors';

const CAPABILITIES: Capability[] = ['read', 'generate', 'administer'];

/** The FORBIDDEN error `fn` throws, or a failure if it throws nothing. */
function forbidden(fn: () => unknown): ForbiddenError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ForbiddenError);
    expect(error).toBeInstanceOf(GraphQLError);
    return error as ForbiddenError;
  }
  throw new Error('expected a FORBIDDEN error, nothing was thrown');
}

describe('Access', () => {
  it.each([
    [Role.ADMIN, ['read', 'generate', 'administer']],
    [Role.EDITOR, ['read', 'generate']],
    [Role.VIEWER, ['read']],
  ])('gives %s exactly the capabilities %j', (role, expected) => {
    for (const access of [Access.apiKey('key-1', role, null), Access.apiKey('key-1', role, ['111'])]) {
      expect(CAPABILITIES.filter((capability) => access.can(capability))).toEqual(expected);
      expect(access.role).toBe(role);
    }
  });

  it.each([
    ['open', Access.open(), 'open'],
    ['ADMIN_API_KEY', Access.adminApiKey(), 'admin-api-key'],
    ['internal', Access.internal(), 'internal'],
  ])('makes %s an unscoped ADMIN with no stored key', (_name, access, kind) => {
    expect(access.principal.kind).toBe(kind);
    expect(access.role).toBe(Role.ADMIN);
    expect(access.pageIds).toBeNull();
    expect(access.scoped).toBe(false);
    expect(access.apiKeyId).toBeUndefined();
    expect(CAPABILITIES.every((capability) => access.can(capability))).toBe(true);
    expect(access.sees('999')).toBe(true);
  });

  it('never scopes an ADMIN key, even when pages are given', () => {
    const access = Access.apiKey('admin-key', Role.ADMIN, ['111', '222']);
    expect(access.pageIds).toBeNull();
    expect(access.scoped).toBe(false);
    expect(access.sees('333')).toBe(true);
    expect(() => access.requirePage('333', 'pageId')).not.toThrow();
    expect(access.readScope(undefined).pageIds).toBeNull();
    expect(access.readScope('333').pageIds).toEqual(['333']);
    expect(access.apiKeyId).toBe('admin-key');
    expect(access.principal).toEqual({ kind: 'api-key', apiKeyId: 'admin-key' });
  });

  it.each([Role.EDITOR, Role.VIEWER])('scopes a %s key to its pages', (role) => {
    const access = Access.apiKey('key-2', role, ['111', '222']);
    expect(access.scoped).toBe(true);
    expect(access.pageIds).toEqual(['111', '222']);
    expect(access.sees('111')).toBe(true);
    expect(access.sees('222')).toBe(true);
    expect(access.sees('333')).toBe(false);
    expect(access.sees('')).toBe(false);
    // A page id is matched exactly, not as a prefix or a number.
    expect(access.sees('1111')).toBe(false);
    expect(access.sees('11')).toBe(false);
    expect(access.sees('0111')).toBe(false);
  });

  it('lets an unscoped EDITOR or VIEWER see every page', () => {
    for (const role of [Role.EDITOR, Role.VIEWER]) {
      const access = Access.apiKey('key-3', role, null);
      expect(access.scoped).toBe(false);
      expect(access.sees('anything')).toBe(true);
      expect(access.readScope(null).pageIds).toBeNull();
    }
  });

  it('requirePage is FORBIDDEN on the field given, and passes on the pages of the key', () => {
    const access = Access.apiKey('key-4', Role.EDITOR, ['111']);
    expect(() => access.requirePage('111', 'pageId')).not.toThrow();
    const error = forbidden(() => access.requirePage('222', 'pageIds[3]'));
    expect(error.extensions).toEqual({ code: 'FORBIDDEN', field: 'pageIds[3]' });
    // The message names the page the caller sent, and nothing of the key's own pages.
    expect(error.message).toContain('"222"');
    expect(error.message).not.toContain('111');
  });

  it('readScope: the page named (FORBIDDEN outside), else the key pages', () => {
    const access = Access.apiKey('key-5', Role.VIEWER, ['111', '222']);
    expect(access.readScope(undefined).pageIds).toEqual(['111', '222']);
    expect(access.readScope(null).pageIds).toEqual(['111', '222']);
    expect(access.readScope('222').pageIds).toEqual(['222']);
    expect(forbidden(() => access.readScope('333').pageIds).extensions).toEqual({ code: 'FORBIDDEN', field: 'pageId' });
    expect(forbidden(() => access.readScope('333', 'filter.pageId').pageIds).extensions).toEqual({
      code: 'FORBIDDEN',
      field: 'filter.pageId',
    });
    // An empty string is a page id like any other, not "no filter".
    expect(forbidden(() => access.readScope('').pageIds).extensions).toEqual({ code: 'FORBIDDEN', field: 'pageId' });
  });

  it('does not share its pages with the caller: changing the given array later changes nothing it sees', () => {
    const pages = ['111'];
    const access = Access.apiKey('key-6', Role.VIEWER, pages);
    pages.push('222');
    expect(access.sees('222')).toBe(false);
  });
});

/** Placeholders as SQLite numbers them, and the values bound, in order. */
function binder(): { values: unknown[]; bind: (value: unknown) => string } {
  const values: unknown[] = [];
  return { values, bind: (value) => (values.push(value), '?') };
}

describe('PageScope', () => {
  const scopeOf = (pageIds: string[] | null): PageScope => Access.apiKey('key', Role.VIEWER, pageIds).scope;

  it('names the table itself for every page, with no value bound', () => {
    const { values, bind } = binder();
    expect(Access.internal().scope.table('code', bind)).toBe('code');
    expect(Access.open().scope.table('scan', bind, 's')).toBe('scan s');
    expect(values).toEqual([]);
  });

  it("narrows a table to the scope's pages: by its page column, or through its code", () => {
    const one = binder();
    expect(scopeOf(['111']).table('code', one.bind)).toBe('(SELECT * FROM code WHERE page_id = ?) code');
    expect(one.values).toEqual(['111']);
    const two = binder();
    expect(scopeOf(['111', '222']).table('scan_rollup_ref', two.bind, 'r')).toBe(
      '(SELECT * FROM scan_rollup_ref WHERE page_id IN (?, ?)) r',
    );
    expect(two.values).toEqual(['111', '222']);
    const page = binder();
    expect(scopeOf(['111']).table('page', page.bind)).toBe('(SELECT * FROM page WHERE id = ?) page');
    const child = binder();
    expect(scopeOf(['111']).table('code_visit', child.bind)).toBe(
      '(SELECT * FROM code_visit WHERE code_id IN (SELECT id FROM code WHERE page_id = ?)) code_visit',
    );
    expect(child.values).toEqual(['111']);
  });

  it('reads nothing when empty, and narrowing never widens', () => {
    const { values, bind } = binder();
    const outside = scopeOf(['111']).narrowTo('222');
    expect(outside.empty).toBe(true);
    expect(outside.covers('111')).toBe(false);
    expect(outside.covers('222')).toBe(false);
    expect(outside.table('code', bind)).toBe('(SELECT * FROM code WHERE 1 = 0) code');
    expect(values).toEqual([]);
    expect(scopeOf(['111', '222']).narrowTo('222').pageIds).toEqual(['222']);
    expect(scopeOf(null).narrowTo('333').pageIds).toEqual(['333']);
    expect(scopeOf(null).empty).toBe(false);
  });

  it('a capability URL reads every page but may do nothing else', () => {
    const access = Access.capabilityUrl();
    expect(access.scope.pageIds).toBeNull();
    expect(CAPABILITIES.filter((capability) => access.can(capability))).toEqual(['read']);
    expect(access.principal).toEqual({ kind: 'capability-url' });
  });

  it('on a real database, every count, sum and join through a scoped table sees only its pages', () => {
    const db = new Sqlite(':memory:');
    try {
      db.exec(`CREATE TABLE code (id TEXT PRIMARY KEY, page_id TEXT, ref TEXT, scan_count INTEGER);
               CREATE TABLE code_visit (code_id TEXT, at INTEGER, visits INTEGER)`);
      const insertCode = db.prepare('INSERT INTO code VALUES (?, ?, ?, ?)');
      const insertVisit = db.prepare('INSERT INTO code_visit VALUES (?, ?, ?)');
      [
        ['a1', '111', 'x', 3],
        ['a2', '111', 'y', 4],
        ['b1', '222', 'x', 100],
      ].forEach((row) => insertCode.run(...row));
      [
        ['a1', 1, 2],
        ['b1', 1, 50],
      ].forEach((row) => insertVisit.run(...row));
      const read = (scope: PageScope) => {
        const { values, bind } = binder();
        return db
          .prepare(
            `SELECT COUNT(*) AS codes, SUM(scan_count) AS scans,
               (SELECT SUM(visits) FROM ${scope.table('code_visit', bind, 'v')}) AS visits
             FROM ${scope.table('code', bind)} WHERE ref <> ${bind('')}`,
          )
          .get(...values);
      };
      expect(read(scopeOf(['111']))).toEqual({ codes: 2, scans: 7, visits: 2 });
      expect(read(scopeOf(['222']))).toEqual({ codes: 1, scans: 100, visits: 50 });
      expect(read(scopeOf(['111']).narrowTo('222'))).toEqual({ codes: 0, scans: null, visits: null });
      expect(read(Access.internal().scope)).toEqual({ codes: 3, scans: 107, visits: 52 });
    } finally {
      db.close();
    }
  });

  it('knows how every page-owned table belongs to its page', () => {
    for (const [table, ownership] of Object.entries(PAGE_OWNED_TABLES)) {
      expect([table, Object.keys(ownership)]).toEqual([table, [expect.stringMatching(/^(pageColumn|codeColumn|pageListColumn)$/)]]);
    }
  });
});
