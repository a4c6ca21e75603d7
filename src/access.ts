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
  | { kind: 'internal' };

/**
 * What one request may do and see: its role and, for a scoped key, its pages. Every
 * service call carries one (RequestContext.access); lists, totals and subscriptions
 * without a page filter are narrowed to `pageIds`.
 */
export class Access {
  private readonly pageSet: ReadonlySet<string> | null;

  private constructor(
    readonly principal: Principal,
    readonly role: Role,
    /** the pages this request may see; null: every page */
    readonly pageIds: readonly string[] | null,
  ) {
    this.pageSet = pageIds && new Set(pageIds);
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

  /** A page's access token: an EDITOR of that page alone. */
  static pageToken(pageId: string): Access {
    return new Access({ kind: 'page-token', pageId }, Role.EDITOR, [pageId]);
  }

  static apiKey(apiKeyId: string, role: Role, pageIds: readonly string[] | null): Access {
    return new Access({ kind: 'api-key', apiKeyId }, role, role === Role.ADMIN ? null : pageIds);
  }

  /** The stored key behind this request, if it is one. */
  get apiKeyId(): string | undefined {
    return this.principal.kind === 'api-key' ? this.principal.apiKeyId : undefined;
  }

  /** Whether this request sees only some pages. */
  get scoped(): boolean {
    return this.pageSet !== null;
  }

  can(capability: Capability): boolean {
    return CAPABILITIES[this.role].has(capability);
  }

  sees(pageId: string): boolean {
    return this.pageSet === null || this.pageSet.has(pageId);
  }

  /** FORBIDDEN on `field` when a request names a page outside its pages. */
  requirePage(pageId: string, field: string): void {
    if (!this.sees(pageId)) {
      throw new ForbiddenError(`This API key may not use page "${pageId}": it is scoped to other pages.`, field);
    }
  }

  /**
   * The pages a read covers: the one it names (FORBIDDEN outside the key's pages), else
   * the key's pages; null: every page.
   */
  pagesToRead(pageId: string | null | undefined, field = 'pageId'): readonly string[] | null {
    if (pageId != null) {
      this.requirePage(pageId, field);
      return [pageId];
    }
    return this.pageIds;
  }
}
