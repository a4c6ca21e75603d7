import { ForbiddenError } from './errors';

/** What an API key may do; ADMIN is never scoped to pages. */
export enum Role {
  ADMIN = 'ADMIN',
  EDITOR = 'EDITOR',
  VIEWER = 'VIEWER',
}

/**
 * What an operation needs: `read` (queries and subscriptions), `generate` (codes, series,
 * print sheets), `administer` (pages, keys, relay). Every GraphQL root field names one.
 */
export type Capability = 'read' | 'generate' | 'administer';

const CAPABILITIES: Record<Role, ReadonlySet<Capability>> = {
  [Role.ADMIN]: new Set<Capability>(['read', 'generate', 'administer']),
  [Role.EDITOR]: new Set<Capability>(['read', 'generate']),
  [Role.VIEWER]: new Set<Capability>(['read']),
};

/** Who the presented credential is; also what the rate limit is counted per. */
export type Principal =
  /** no ADMIN_API_KEY and no active stored key: a fresh install, every request is ADMIN */
  | { kind: 'open' }
  | { kind: 'admin-api-key' }
  | { kind: 'api-key'; apiKeyId: string }
  /** a page's own access token, presented to the Messenger Code API as Facebook's callers do */
  | { kind: 'page-token'; pageId: string }
  /** the gateway itself: webhooks (signed by Meta), start-up, the keys CLI */
  | { kind: 'internal' }
  /** no key, but a capability URL (an image's, a print sheet's, a REDIRECT link's): its random id is the credential */
  | { kind: 'capability-url' };

/**
 * How each table holding a page's data belongs to its page. Reads of these tables go
 * through PageScope.table, which keeps a scoped key's reads (rows, totals, statistics,
 * exports) to its pages; test/architecture.test.ts fails on any other read of them.
 */
export const PAGE_OWNED_TABLES = {
  page: { pageColumn: 'id' },
  code: { pageColumn: 'page_id' },
  scan: { pageColumn: 'page_id' },
  ref_counter: { pageColumn: 'page_id' },
  scan_rollup_page: { pageColumn: 'page_id' },
  scan_rollup_ref: { pageColumn: 'page_id' },
  scan_rollup_source: { pageColumn: 'page_id' },
  scan_rollup_pending: { pageColumn: 'page_id' },
  code_image: { codeColumn: 'code_id' },
  code_vector: { codeColumn: 'code_id' },
  code_style: { codeColumn: 'code_id' },
  code_visit: { codeColumn: 'code_id' },
  /** a sheet may show several pages: PrintSheetService.read keeps it to a scope that covers them all */
  print_sheet: { pageListColumn: 'page_ids' },
} as const satisfies Record<string, { pageColumn: string } | { codeColumn: string } | { pageListColumn: string }>;

export type PageOwnedTable = keyof typeof PAGE_OWNED_TABLES;

/** Appends a value to a statement's parameters and answers its placeholder (Database.parameters). */
export type Bind = (value: unknown) => string;

let scopeOf: (pageIds: readonly string[] | null) => PageScope;

/**
 * The pages one read may see, and the only way to name a page-owned table in a read: a
 * query says FROM ${scope.table('code', bind)}, and a scoped key's query then reads only
 * its pages' rows, whatever else it counts, joins or sums. Only an Access makes one.
 */
export class PageScope {
  static {
    scopeOf = (pageIds) => new PageScope(pageIds);
  }

  private readonly pageSet: ReadonlySet<string> | null;

  private constructor(
    /** null: every page */
    readonly pageIds: readonly string[] | null,
  ) {
    this.pageSet = pageIds && new Set(pageIds);
  }

  /** Whether this scope reads nothing: a read may answer empty without a query. */
  get empty(): boolean {
    return this.pageIds?.length === 0;
  }

  covers(pageId: string): boolean {
    return this.pageSet === null || this.pageSet.has(pageId);
  }

  /** This scope narrowed to one of its pages; empty for a page outside it. Never wider. */
  narrowTo(pageId: string): PageScope {
    return scopeOf(this.covers(pageId) ? [pageId] : []);
  }

  /**
   * `table` for a FROM or JOIN, as `alias`: the table itself for every page, otherwise
   * its rows of this scope's pages, as a subquery that SQLite and PostgreSQL both flatten
   * into the outer query (its indexes still serve). Placeholders are bound through `bind`
   * where the fragment stands: on SQLite they are positional, so call this where the
   * statement's text has it.
   */
  table(table: Exclude<PageOwnedTable, 'print_sheet'>, bind: Bind, alias: string = table): string {
    if (this.pageIds === null) return alias === table ? table : `${table} ${alias}`;
    const ownership: { pageColumn?: string; codeColumn?: string } = PAGE_OWNED_TABLES[table];
    const pages = this.pagesCondition(ownership.pageColumn ?? 'page_id', bind);
    const condition = ownership.codeColumn === undefined ? pages : `${ownership.codeColumn} IN (SELECT id FROM code WHERE ${pages})`;
    return `(SELECT * FROM ${table} WHERE ${condition}) ${alias}`;
  }

  private pagesCondition(column: string, bind: Bind): string {
    const pageIds = this.pageIds ?? [];
    if (pageIds.length === 0) return '1 = 0';
    if (pageIds.length === 1) return `${column} = ${bind(pageIds[0])}`;
    return `${column} IN (${pageIds.map(bind).join(', ')})`;
  }
}

/**
 * What one request may do and see: its role and, for a scoped key, its pages. Every
 * service call carries one (RequestContext.access); lists, totals and subscriptions
 * without a page filter are narrowed to `pageIds`.
 */
export class Access {
  /** What this request may read: every read of a page-owned table goes through it (PageScope.table). */
  readonly scope: PageScope;

  private constructor(
    readonly principal: Principal,
    readonly role: Role,
    /** the pages this request may see; null: every page */
    readonly pageIds: readonly string[] | null,
  ) {
    this.scope = scopeOf(pageIds);
  }

  static open(): Access {
    return new Access({ kind: 'open' }, Role.ADMIN, null);
  }

  static adminApiKey(): Access {
    return new Access({ kind: 'admin-api-key' }, Role.ADMIN, null);
  }

  static internal(): Access {
    return new Access({ kind: 'internal' }, Role.ADMIN, null);
  }

  /** A request without a key for a capability URL: it reads the one thing whose random id it holds. */
  static capabilityUrl(): Access {
    return new Access({ kind: 'capability-url' }, Role.VIEWER, null);
  }

  /** A page's access token: an EDITOR of that page alone. */
  static pageToken(pageId: string): Access {
    return new Access({ kind: 'page-token', pageId }, Role.EDITOR, [pageId]);
  }

  static apiKey(apiKeyId: string, role: Role, pageIds: readonly string[] | null): Access {
    return new Access({ kind: 'api-key', apiKeyId }, role, role === Role.ADMIN || pageIds === null ? null : [...pageIds]);
  }

  /** The stored key behind this request, if it is one. */
  get apiKeyId(): string | undefined {
    return this.principal.kind === 'api-key' ? this.principal.apiKeyId : undefined;
  }

  /** Whether this request sees only some pages. */
  get scoped(): boolean {
    return this.pageIds !== null;
  }

  can(capability: Capability): boolean {
    return CAPABILITIES[this.role].has(capability);
  }

  sees(pageId: string): boolean {
    return this.scope.covers(pageId);
  }

  /** FORBIDDEN on `field` when a request names a page outside its pages. */
  requirePage(pageId: string, field: string): void {
    if (!this.sees(pageId)) {
      throw new ForbiddenError(`This API key may not use page "${pageId}": it is scoped to other pages.`, field);
    }
  }

  /**
   * What a read covers: the page it names (FORBIDDEN outside the key's pages, on `field`),
   * else the key's pages.
   */
  readScope(pageId: string | null | undefined, field = 'pageId'): PageScope {
    if (pageId == null) return this.scope;
    this.requirePage(pageId, field);
    return this.scope.narrowTo(pageId);
  }
}
