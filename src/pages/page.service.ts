import { createHash, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { BadUserInputError, NotFoundError } from '../errors';
import type { Logger } from '../logging/logger';
import type { ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import { PageRow } from './page.entity';
import type { Page } from './page.types';
import { UnknownTokenKeyError, type TokenCipher } from './token-cipher';

export interface KnownPage {
  id: string;
}

export interface RegisterPageRequest {
  id: string;
  name?: string | null;
  accessToken?: string | null;
  relayUrl?: string | null;
}

/** undefined: keep the stored value; null: clear it. */
export type UpdatePageRequest = RegisterPageRequest;

export interface PageServiceOptions {
  defaultPageId: string;
  /** PAGE_ACCESS_TOKEN: the default page's token from the environment */
  defaultPageAccessToken: string | undefined;
  cipher: TokenCipher;
  logger: Logger;
}

const PAGE_ID = /^\d{1,32}$/;
const MAX_NAME_LENGTH = 200;
const MAX_TOKEN_LENGTH = 1000;
const MAX_RELAY_URL_LENGTH = 2048;
const PAGES_ORDERING = 'PAGES';

/** What pages and page read: never the token's ciphertext, only whether there is one. */
const PAGE_LIST_COLUMNS = 'id, name, relay_url, created_at, CASE WHEN token_ciphertext IS NULL THEN 0 ELSE 1 END AS has_token';

interface PageListRow {
  id: string;
  name: string | null;
  relay_url: string | null;
  created_at: number | string;
  has_token: number | string;
}
/**
 * How long a page's relay URL is remembered for the webhook path. A change made on this
 * instance applies at once; one made on another instance within this time.
 */
const RELAY_URL_CACHE_MS = 5_000;
const RELAY_URL_CACHE_SIZE = 10_000;

/**
 * Tables that hold a page's data, children first: removePage deletes from each, in this
 * order, in one transaction (code_image references code).
 */
const PAGE_DATA = [
  // page-scope exempt: removePage's deletes (ADMIN only), whose subqueries name the page removed.
  'DELETE FROM code_image WHERE code_id IN (SELECT id FROM code WHERE page_id = $1)',
  // A sheet showing any code of the page goes with it (page_ids is a JSON array of ids).
  `DELETE FROM print_sheet WHERE page_ids LIKE '%"' || $1 || '"%'`,
  'DELETE FROM code_visit WHERE code_id IN (SELECT id FROM code WHERE page_id = $1)',
  'DELETE FROM code WHERE page_id = $1',
  'DELETE FROM scan WHERE page_id = $1',
  'DELETE FROM ref_counter WHERE page_id = $1',
  'DELETE FROM page WHERE id = $1',
];

function isUniqueViolation(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return code === '23505' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || /UNIQUE constraint failed/.test(message ?? '');
}

/**
 * The registry of pages codes may be generated for, and the keeper of their tokens.
 * Tokens are stored only AES-256-GCM encrypted; they leave this service only towards
 * the code provider (accessTokenOf), never towards GraphQL or the logs.
 */
export class PageService {
  readonly defaultPageId: string;
  private readonly cipher: TokenCipher;
  private readonly logger: Logger;
  /**
   * Tokens kept in memory only: PAGE_ACCESS_TOKEN when there is no ENCRYPTION_KEY to store
   * it with (deployments that predate the registry keep working). Setting or clearing
   * that page's token through updatePage replaces it for the life of the process.
   */
  private readonly memoryTokens = new Map<string, string>();
  private readonly defaultPageAccessToken: string | undefined;
  /** relayUrlsOf's memory: page id → its relay URL (null: none, or not registered) and until when it holds. */
  private readonly relayUrls = new Map<string, { url: string | null; until: number }>();

  constructor(
    private readonly db: Database,
    options: PageServiceOptions,
  ) {
    this.defaultPageId = options.defaultPageId;
    this.defaultPageAccessToken = options.defaultPageAccessToken;
    this.cipher = options.cipher;
    this.logger = options.logger;
  }

  /**
   * At start: registers the default page if it is not yet, stores PAGE_ACCESS_TOKEN
   * (encrypted, when there is a key; else in memory), and re-encrypts under ENCRYPTION_KEY
   * every token still encrypted under an older key, so that an old key can be dropped
   * from ENCRYPTION_KEY_PREVIOUS after one start.
   */
  async init(): Promise<void> {
    const id = this.defaultPageId;
    const envToken = this.defaultPageAccessToken;
    const storeEnvToken = envToken !== undefined && this.cipher.canEncrypt;
    if (envToken !== undefined && !storeEnvToken) this.memoryTokens.set(id, envToken);
    await this.registerDefaultPage(id, storeEnvToken ? envToken : null).catch((error: unknown) => {
      // Another instance on the same database registered it at the same moment: theirs stands.
      if (!isUniqueViolation(error)) throw error;
    });
    await this.reencryptStaleTokens();
  }

  /** `token`: PAGE_ACCESS_TOKEN when it is to be stored (there is a key), else null. */
  private async registerDefaultPage(id: string, token: string | null): Promise<void> {
    await this.db.transaction(async (manager) => {
      // page-scope exempt: start-up registers PAGE_ID; no request is served yet.
      const existing = await manager.findOneBy(PageRow, { id });
      if (!existing) {
        await manager.insert(PageRow, {
          id,
          name: null,
          relayUrl: null,
          ...this.sealedColumns(id, token),
          createdAt: new Date(),
        });
        // debug: a start that fails later (a port in use) must say only why it failed.
        this.logger.debug({ pageId: id }, 'default page registered');
        return;
      }
      // PAGE_ACCESS_TOKEN is the source of truth for the default page: a changed one replaces the stored token.
      if (token !== null && this.tryOpen(existing) !== token) {
        await manager.update(PageRow, { id }, this.sealedColumns(id, token));
      }
    });
  }

  private async reencryptStaleTokens(): Promise<void> {
    if (!this.cipher.canEncrypt) return;
    // page-scope exempt: start-up re-encrypts every page's token; nothing is answered from it.
    const rows = await this.db.manager
      .createQueryBuilder(PageRow, 'page')
      .where('page.tokenCiphertext IS NOT NULL')
      .andWhere('page.tokenKeyId <> :current', { current: this.cipher.currentKeyId })
      .getMany();
    let reencrypted = 0;
    for (const row of rows) {
      let token: string;
      try {
        token = this.open(row);
      } catch (error) {
        // Told once at start, with what to do; the page keeps its (unusable) token until then.
        this.logger.warn(
          { pageId: row.id, keyId: row.tokenKeyId },
          error instanceof UnknownTokenKeyError
            ? "a page's access token is encrypted under a key that is neither ENCRYPTION_KEY nor in ENCRYPTION_KEY_PREVIOUS: add that key to ENCRYPTION_KEY_PREVIOUS or set the token again with updatePage"
            : "a page's stored access token does not decrypt (modified in the database?): set it again with updatePage",
        );
        continue;
      }
      // Only if nobody changed it meanwhile (another instance starting at the same time).
      await this.db.transaction((manager) =>
        manager.update(PageRow, { id: row.id, tokenKeyId: row.tokenKeyId as string }, this.sealedColumns(row.id, token)),
      );
      reencrypted++;
    }
    if (reencrypted > 0) this.logger.info({ pages: reencrypted }, 'page access tokens re-encrypted under ENCRYPTION_KEY');
  }

  /** The page a request names, or the default page; NOT_FOUND (field `field`) when it is not registered. */
  async require(context: RequestContext, pageId: string | null | undefined, field = 'pageId'): Promise<KnownPage> {
    const id = pageId ?? this.defaultPageId;
    // Before the lookup: a key outside the page learns nothing of whether it exists.
    const scope = context.access.readScope(id, field);
    const { values, bind } = this.db.parameters();
    const [row] = PAGE_ID.test(id)
      ? await this.db.read<{ id: string }>(`SELECT id FROM ${scope.table('page', bind)} WHERE id = ${bind(id)}`, values)
      : [];
    if (!row) {
      throw new NotFoundError(field, `Unknown page "${id}": register it with registerPage before generating its codes.`);
    }
    return { id: row.id };
  }

  /**
   * The token the Graph API is called with for this page. A page without one is the
   * caller's to fix (updatePage), so BAD_USER_INPUT on `field` says how.
   */
  async accessTokenOf(_context: RequestContext, pageId: string, field = 'pageId'): Promise<string> {
    const inMemory = this.memoryTokens.get(pageId);
    if (inMemory !== undefined) return inMemory;
    // page-scope exempt: the token for the Graph API call of a page the request was allowed (PageService.require), never returned.
    const row = await this.db.manager.findOneBy(PageRow, { id: pageId });
    if (!row?.tokenCiphertext) {
      throw new BadUserInputError(
        field,
        `Page "${pageId}" has no access token: set one with updatePage(input: { id: "${pageId}", accessToken: "…" }).`,
      );
    }
    try {
      return this.open(row);
    } catch (error) {
      if (error instanceof UnknownTokenKeyError) {
        throw new BadUserInputError(
          field,
          `The access token of page "${pageId}" is encrypted under a key this gateway does not have: add it to ENCRYPTION_KEY_PREVIOUS, or set the token again with updatePage.`,
        );
      }
      throw new BadUserInputError(field, `The stored access token of page "${pageId}" cannot be decrypted: set it again with updatePage.`);
    }
  }

  /**
   * The registered page whose access token this is, for callers that present a page token
   * as the Graph API's callers do. Every stored token is decrypted and compared in
   * constant time: linear in the pages that have a token (fine for hundreds of pages).
   */
  async pageOfToken(token: string): Promise<string | undefined> {
    const presented = createHash('sha256').update(token).digest();
    const matches = (candidate: string) => timingSafeEqual(createHash('sha256').update(candidate).digest(), presented);
    for (const [pageId, candidate] of this.memoryTokens) if (matches(candidate)) return pageId;
    // page-scope exempt: authenticates a presented page token; the answer is the one page it belongs to.
    const rows = await this.db.manager.createQueryBuilder(PageRow, 'page').where('page.tokenCiphertext IS NOT NULL').getMany();
    return rows.find((row) => {
      const candidate = this.tryOpen(row);
      return candidate !== undefined && matches(candidate);
    })?.id;
  }

  async findById(context: RequestContext, id: string): Promise<Page | null> {
    if (!PAGE_ID.test(id)) return null;
    const { values, bind } = this.db.parameters();
    const [row] = await this.db.read<PageListRow>(
      `SELECT ${PAGE_LIST_COLUMNS} FROM ${context.access.scope.table('page', bind)} WHERE id = ${bind(id)}`,
      values,
    );
    return row ? this.toListedPage(row) : null;
  }

  async list(context: RequestContext, request: { first?: number | null; after?: string | null }): Promise<ListPage<Page>> {
    const first = pageSize(request.first);
    const { values: parameters, bind } = this.db.parameters();
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const pages = context.access.scope.table('page', bind);
    const totalParameters = [...parameters];
    const conditions: string[] = [];
    if (request.after != null) {
      const [createdAt, id] = decodeCursor(request.after, PAGES_ORDERING, ['number', 'string']);
      conditions.push(`(created_at > ${bind(createdAt)} OR (created_at = ${bind(createdAt)} AND id > ${bind(id)}))`);
    }
    const rows = await this.db.read<PageListRow>(
      `SELECT ${PAGE_LIST_COLUMNS} FROM ${pages} ${conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : ''}
       ORDER BY created_at, id LIMIT ${bind(first + 1)}`,
      parameters,
    );
    const listed = rows.slice(0, first).map((row) => this.toListedPage(row));
    return {
      items: listed,
      cursors: listed.map((page) => encodeCursor(PAGES_ORDERING, [page.createdAt.getTime(), page.id])),
      hasNextPage: rows.length > first,
      totalCount: async () => {
        const [row] = await this.db.read<{ total: number | string }>(`SELECT COUNT(*) AS total FROM ${pages}`, totalParameters);
        return Number(row.total);
      },
    };
  }

  /** A page as listed: everything but its token, of which only whether it has one. */
  private toListedPage(row: PageListRow): Page {
    return {
      id: row.id,
      name: row.name,
      hasAccessToken: Number(row.has_token) === 1 || this.memoryTokens.has(row.id),
      relayUrl: row.relay_url,
      createdAt: new Date(Number(row.created_at)),
    };
  }

  /**
   * The relay URL of each page (null: none, or not registered), for every webhook request:
   * read once per page every few seconds rather than per request.
   */
  async relayUrlsOf(pageIds: readonly string[]): Promise<Map<string, string | null>> {
    const now = Date.now();
    const found = new Map<string, string | null>();
    const missing: string[] = [];
    for (const id of new Set(pageIds)) {
      // Not a page id (an entry of a signed but odd body, a NUL that PostgreSQL would refuse): no page, no URL of its own.
      if (!PAGE_ID.test(id)) {
        found.set(id, null);
        continue;
      }
      const cached = this.relayUrls.get(id);
      if (cached && cached.until > now) found.set(id, cached.url);
      else missing.push(id);
    }
    if (missing.length === 0) return found;
    const parameters = this.db.parameters();
    // page-scope exempt: the webhook's relay targets of the signed events' own pages.
    const rows = await this.db.read<{ id: string; relay_url: string | null }>(
      `SELECT id, relay_url FROM page WHERE id IN (${missing.map((id) => parameters.bind(id)).join(', ')})`,
      parameters.values,
    );
    const urls = new Map(rows.map((row) => [row.id, row.relay_url]));
    if (this.relayUrls.size + missing.length > RELAY_URL_CACHE_SIZE) this.relayUrls.clear();
    for (const id of missing) {
      const url = urls.get(id) ?? null;
      found.set(id, url);
      this.relayUrls.set(id, { url, until: now + RELAY_URL_CACHE_MS });
    }
    return found;
  }

  /** Every relay URL pages have, for the operators' view of the relay. */
  async relayUrlsInUse(): Promise<string[]> {
    // page-scope exempt: relay status is ADMIN only (every page).
    const rows = await this.db.read<{ relay_url: string }>('SELECT DISTINCT relay_url FROM page WHERE relay_url IS NOT NULL');
    return rows.map((row) => row.relay_url);
  }

  /** Which of these ids are not registered pages. */
  async missingAmong(pageIds: readonly string[]): Promise<string[]> {
    const wellFormed = [...new Set(pageIds.filter((id) => PAGE_ID.test(id)))];
    const found =
      wellFormed.length === 0
        ? []
        : // page-scope exempt: createApiKey (ADMIN only) checks that the pages it names exist.
          await this.db.manager
            .createQueryBuilder(PageRow, 'page')
            .select('page.id', 'id')
            .where('page.id IN (:...ids)', { ids: wellFormed })
            .getRawMany<{ id: string }>();
    const registered = new Set(found.map((row) => row.id));
    return pageIds.filter((id) => !registered.has(id));
  }

  async register(_context: RequestContext, request: RegisterPageRequest): Promise<Page> {
    const id = validatePageId(request.id);
    const name = validateName(request.name);
    const relayUrl = validateRelayUrl(request.relayUrl);
    const token = this.validateToken(request.accessToken);
    const row: PageRow = Object.assign(new PageRow(), {
      id,
      name: name ?? null,
      relayUrl: relayUrl ?? null,
      ...this.sealedColumns(id, token ?? null),
      createdAt: new Date(),
    });
    try {
      await this.db.transaction(async (manager) => {
        // page-scope exempt: registerPage (ADMIN only).
        if (await manager.existsBy(PageRow, { id })) throw duplicate(id);
        await manager.insert(PageRow, row);
      });
    } catch (error) {
      // Two registrations of the same id at once: the second meets the primary key.
      if (isUniqueViolation(error)) throw duplicate(id);
      throw error;
    }
    this.relayUrls.delete(id);
    return this.toPage(row);
  }

  async update(_context: RequestContext, request: UpdatePageRequest): Promise<Page> {
    const id = validatePageId(request.id);
    const changes: Partial<PageRow> = {};
    if (request.name !== undefined) changes.name = validateName(request.name) ?? null;
    if (request.relayUrl !== undefined) changes.relayUrl = validateRelayUrl(request.relayUrl) ?? null;
    if (request.accessToken !== undefined) Object.assign(changes, this.sealedColumns(id, this.validateToken(request.accessToken) ?? null));
    const row = await this.db.transaction(async (manager) => {
      // page-scope exempt: updatePage (ADMIN only).
      const existing = await manager.findOneBy(PageRow, { id });
      if (!existing) throw unknown(id);
      if (Object.keys(changes).length > 0) await manager.update(PageRow, { id }, changes);
      return Object.assign(existing, changes);
    });
    if (request.accessToken !== undefined) this.memoryTokens.delete(id);
    this.relayUrls.delete(id);
    return this.toPage(row);
  }

  /** Deletes the page with its codes, images, scans and counters, all or nothing. */
  async remove(_context: RequestContext, pageId: string): Promise<string> {
    const id = validatePageId(pageId);
    await this.db.transaction(async (manager: EntityManager) => {
      // page-scope exempt: removePage (ADMIN only).
      if (!(await manager.existsBy(PageRow, { id }))) throw unknown(id);
      for (const statement of PAGE_DATA) {
        await manager.query(this.db.kind === 'postgres' ? statement : statement.replace('$1', '?'), [id]);
      }
    });
    this.memoryTokens.delete(id);
    this.relayUrls.delete(id);
    return id;
  }

  private toPage(row: PageRow): Page {
    return {
      id: row.id,
      name: row.name,
      hasAccessToken: row.tokenCiphertext !== null || this.memoryTokens.has(row.id),
      relayUrl: row.relayUrl,
      createdAt: row.createdAt,
    };
  }

  private validateToken(token: string | null | undefined): string | null | undefined {
    if (token == null) return token;
    if (token.trim() === '' || token.length > MAX_TOKEN_LENGTH) {
      throw new BadUserInputError('accessToken', `accessToken must be 1 to ${MAX_TOKEN_LENGTH} characters`);
    }
    if (!this.cipher.canEncrypt) {
      throw new BadUserInputError(
        'accessToken',
        'Page tokens are stored encrypted: set ENCRYPTION_KEY (32 bytes, e.g. `openssl rand -hex 32`) on the gateway to store one.',
      );
    }
    return token;
  }

  private sealedColumns(id: string, token: string | null): Pick<PageRow, 'tokenCiphertext' | 'tokenKeyId'> {
    if (token === null) return { tokenCiphertext: null, tokenKeyId: null };
    const sealed = this.cipher.seal(token, id);
    return { tokenCiphertext: sealed.ciphertext, tokenKeyId: sealed.keyId };
  }

  private open(row: PageRow): string {
    return this.cipher.open({ keyId: row.tokenKeyId ?? '', ciphertext: row.tokenCiphertext ?? '' }, row.id);
  }

  private tryOpen(row: PageRow): string | undefined {
    if (row.tokenCiphertext === null) return undefined;
    try {
      return this.open(row);
    } catch {
      return undefined;
    }
  }
}

function duplicate(id: string): BadUserInputError {
  return new BadUserInputError('id', `Page "${id}" is already registered: change it with updatePage.`);
}

function unknown(id: string): NotFoundError {
  return new NotFoundError('id', `Unknown page "${id}".`);
}

function validatePageId(id: string): string {
  if (!PAGE_ID.test(id))
    throw new BadUserInputError('id', `id must be the numeric id of a Facebook page (1 to 32 digits), got "${id.slice(0, 40)}"`);
  return id;
}

function validateName(name: string | null | undefined): string | null | undefined {
  if (name == null) return name;
  if (name.trim() === '' || name.length > MAX_NAME_LENGTH) {
    throw new BadUserInputError('name', `name must be 1 to ${MAX_NAME_LENGTH} characters (null for none)`);
  }
  return name;
}

function validateRelayUrl(relayUrl: string | null | undefined): string | null | undefined {
  if (relayUrl == null) return relayUrl;
  let url: URL | undefined;
  try {
    url = new URL(relayUrl);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || relayUrl.length > MAX_RELAY_URL_LENGTH) {
    throw new BadUserInputError('relayUrl', `relayUrl must be an absolute http(s) URL of at most ${MAX_RELAY_URL_LENGTH} characters`);
  }
  return relayUrl;
}
