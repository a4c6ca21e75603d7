import { randomUUID, timingSafeEqual, createHash } from 'node:crypto';
import { Access, Role } from '../access';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { BadUserInputError, NotFoundError } from '../errors';
import type { Logger } from '../logging/logger';
import type { ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import { ApiKeyRow } from './api-key.entity';
import { DISPLAYED_PREFIX_LENGTH, generateKey, hashKey, isWellFormedKey } from './key-format';

/** An API key as lists show it: never the secret. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  role: Role;
  pageIds: string[] | null;
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export interface CreateApiKeyRequest {
  name: string;
  role: Role;
  pageIds?: readonly string[] | null;
}

/** Which pages exist: a key may only be scoped to registered pages. */
export interface PageDirectory {
  missingAmong(pageIds: readonly string[]): Promise<string[]>;
}

const MAX_NAME_LENGTH = 100;
/** Pages one key may be scoped to; an agency's key for all its clients is unscoped or uses several keys. */
const MAX_KEY_PAGES = 1000;
/** lastUsedAt is written at most this often per key and instance: a write per request would cost more than the request. */
const LAST_USED_RESOLUTION_MS = 60_000;
const KEYS_ORDERING = 'api-keys:created-asc';
/** How long a gateway seen locked is taken to still be (see isOpen). */
const LOCKED_MEMORY_MS = 1_000;

/** The key of an `Authorization: Bearer <key>` value, or undefined. */
export function bearerToken(authorization: unknown): string | undefined {
  if (typeof authorization !== 'string') return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1];
}

const digest = (secret: string) => createHash('sha256').update(secret).digest();

/** Compares digests, so the comparison takes the same time whatever the lengths. */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

function recordOf(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    pageIds: row.pageIds === null ? null : (JSON.parse(row.pageIds) as string[]),
    prefix: row.prefix,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    revokedAt: row.revokedAt,
  };
}

interface AuthRow {
  id: string;
  role: Role;
  page_ids: string | null;
  revoked_at: string | number | null;
}

/**
 * API keys: created, listed and revoked by ADMIN keys (or the keys CLI), and the one
 * place a presented credential becomes an Access. Keys are looked up by the hash of
 * the secret on every request, so a revocation holds on the next request of every
 * instance; the open-gateway rule is judged on every request for the same reason.
 */
export class ApiKeyService {
  private readonly lastUsedWritten = new Map<string, number>();
  private lockedUntil = 0;
  private readonly revokedListeners = new Set<(apiKeyId: string) => void>();

  constructor(
    private readonly db: Database,
    private readonly pages: PageDirectory,
    private readonly options: { adminApiKey: string | undefined; logger: Logger },
  ) {}

  /**
   * The access of a request from its Authorization header; undefined when the request
   * must be refused (UNAUTHENTICATED). With no ADMIN_API_KEY and no active stored key,
   * every request is ADMIN, whatever it presents.
   */
  async authenticate(authorization: unknown): Promise<Access | undefined> {
    const presented = bearerToken(authorization);
    const access = presented === undefined ? undefined : await this.accessOfPresentedKey(presented);
    if (access) return access;
    return (await this.isOpen()) ? Access.open() : undefined;
  }

  /**
   * The access of a key itself (ADMIN_API_KEY or a stored, active key), never the open
   * gateway's: for callers that must always present a credential.
   */
  async accessOfPresentedKey(key: string): Promise<Access | undefined> {
    const { adminApiKey } = this.options;
    if (adminApiKey !== undefined && sameSecret(key, adminApiKey)) return Access.adminApiKey();
    // Shape and checksum first: guesses and typos cost no database lookup.
    return isWellFormedKey(key) ? this.accessOfKey(key) : undefined;
  }

  private async accessOfKey(key: string): Promise<Access | undefined> {
    const db = this.db;
    const rows = await db.read<AuthRow>(`SELECT id, role, page_ids, revoked_at FROM api_key WHERE secret_hash = ${db.param(1)}`, [
      hashKey(key),
    ]);
    const row = rows[0];
    if (!row || row.revoked_at !== null) return undefined;
    this.noteUse(row.id);
    return Access.apiKey(row.id, row.role, row.page_ids === null ? null : (JSON.parse(row.page_ids) as string[]));
  }

  /**
   * No ADMIN_API_KEY and no active stored key: a fresh install, open to every request.
   * "Locked" is remembered for a second (requests without a valid key, guesses included,
   * then cost no query); "open" never is, so the first key locks every instance at once.
   */
  async isOpen(): Promise<boolean> {
    if (this.options.adminApiKey !== undefined) return false;
    if (performance.now() < this.lockedUntil) return false;
    const rows = await this.db.read<{ id: string }>('SELECT id FROM api_key WHERE revoked_at IS NULL LIMIT 1');
    if (rows.length === 0) return true;
    this.lockedUntil = performance.now() + LOCKED_MEMORY_MS;
    return false;
  }

  private noteUse(apiKeyId: string): void {
    const now = Date.now();
    const last = this.lastUsedWritten.get(apiKeyId);
    if (last !== undefined && now - last < LAST_USED_RESOLUTION_MS) return;
    this.lastUsedWritten.set(apiKeyId, now);
    // Not awaited: the request does not wait for bookkeeping, and a failure only delays it.
    this.db
      .transaction((manager) => manager.update(ApiKeyRow, { id: apiKeyId }, { lastUsedAt: new Date(now) }))
      .catch((error: Error) => {
        this.lastUsedWritten.delete(apiKeyId);
        this.options.logger.warn({ apiKeyId, error: error.message }, 'could not record when an API key was last used');
      });
  }

  async create(_context: RequestContext, request: CreateApiKeyRequest): Promise<{ apiKey: ApiKeyRecord; key: string }> {
    const name = request.name.trim();
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      throw new BadUserInputError('name', `name must be 1 to ${MAX_NAME_LENGTH} characters`);
    }
    if (!Object.values(Role).includes(request.role)) {
      throw new BadUserInputError('role', `role must be one of ${Object.values(Role).join(', ')}`);
    }
    const pageIds = await this.validatePageIds(request.role, request.pageIds);
    const key = generateKey();
    const row: ApiKeyRow = Object.assign(new ApiKeyRow(), {
      id: randomUUID(),
      name,
      role: request.role,
      pageIds: pageIds === null ? null : JSON.stringify(pageIds),
      prefix: key.slice(0, DISPLAYED_PREFIX_LENGTH),
      secretHash: hashKey(key),
      createdAt: new Date(),
      lastUsedAt: null,
      revokedAt: null,
    });
    await this.db.transaction((manager) => manager.insert(ApiKeyRow, row));
    this.options.logger.info({ apiKeyId: row.id, role: row.role, scoped: pageIds !== null }, 'API key created');
    return { apiKey: recordOf(row), key };
  }

  private async validatePageIds(role: Role, pageIds: readonly string[] | null | undefined): Promise<string[] | null> {
    if (pageIds == null) return null;
    if (role === Role.ADMIN) {
      throw new BadUserInputError('pageIds', 'An ADMIN key is never scoped to pages: leave pageIds out, or choose EDITOR or VIEWER.');
    }
    if (pageIds.length === 0 || pageIds.length > MAX_KEY_PAGES) {
      throw new BadUserInputError('pageIds', `pageIds must name 1 to ${MAX_KEY_PAGES} pages; leave it out for every page`);
    }
    const missing = new Set(await this.pages.missingAmong(pageIds));
    const index = pageIds.findIndex((pageId) => missing.has(pageId));
    if (index >= 0) {
      throw new NotFoundError(`pageIds[${index}]`, `Unknown page "${pageIds[index]}": register it with registerPage first.`);
    }
    return [...new Set(pageIds)];
  }

  async list(_context: RequestContext, request: { first?: number | null; after?: string | null }): Promise<ListPage<ApiKeyRecord>> {
    const first = pageSize(request.first);
    const query = this.db.manager.createQueryBuilder(ApiKeyRow, 'key');
    if (request.after != null) {
      const [createdAt, id] = decodeCursor(request.after, KEYS_ORDERING, ['number', 'string']);
      query.where('(key.createdAt > :createdAt OR (key.createdAt = :createdAt AND key.id > :id))', { createdAt, id });
    }
    const rows = await query
      .orderBy('key.createdAt', 'ASC')
      .addOrderBy('key.id', 'ASC')
      .limit(first + 1)
      .getMany();
    const keys = rows.slice(0, first).map(recordOf);
    return {
      items: keys,
      cursors: keys.map((key) => encodeCursor(KEYS_ORDERING, [key.createdAt.getTime(), key.id])),
      hasNextPage: rows.length > first,
      totalCount: () => this.db.manager.count(ApiKeyRow),
    };
  }

  async findById(_context: RequestContext, id: string): Promise<ApiKeyRecord | null> {
    const row = await this.db.manager.findOneBy(ApiKeyRow, { id });
    return row && recordOf(row);
  }

  /**
   * Revokes a key at once (its next request is refused; its WebSockets are closed by
   * whoever watches onRevoked/revokedAmong). Revoking a revoked key changes nothing.
   * `allowLastAdmin`: only the keys CLI may revoke the last active ADMIN key of a gateway
   * without ADMIN_API_KEY, which would leave nobody able to administer it over the API.
   */
  async revoke(_context: RequestContext, id: string, options: { allowLastAdmin?: boolean } = {}): Promise<ApiKeyRecord> {
    const row = await this.db.transaction(async (manager) => {
      const existing = await manager.findOneBy(ApiKeyRow, { id });
      if (!existing) throw new NotFoundError('id', `Unknown API key "${id}".`);
      if (existing.revokedAt !== null) return existing;
      if (existing.role === Role.ADMIN && this.options.adminApiKey === undefined && !options.allowLastAdmin) {
        const activeAdmins = await manager
          .createQueryBuilder(ApiKeyRow, 'key')
          .where('key.role = :role AND key.revokedAt IS NULL', { role: Role.ADMIN })
          .getCount();
        if (activeAdmins <= 1) {
          throw new BadUserInputError(
            'id',
            'This is the last active ADMIN key: revoking it would leave nobody able to manage pages and keys. Create another ADMIN key first, or revoke it from a shell with `npm run keys -- revoke <id>`.',
          );
        }
      }
      existing.revokedAt = new Date();
      await manager.update(ApiKeyRow, { id }, { revokedAt: existing.revokedAt });
      return existing;
    });
    this.options.logger.info({ apiKeyId: id }, 'API key revoked');
    for (const listener of this.revokedListeners) listener(id);
    return recordOf(row);
  }

  /** Told of each key revoked through this instance, at once. */
  onRevoked(listener: (apiKeyId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** Which of these keys are revoked now (by any instance, or the CLI): what open WebSockets are checked against. */
  async revokedAmong(apiKeyIds: readonly string[]): Promise<string[]> {
    if (apiKeyIds.length === 0) return [];
    const rows = await this.db.manager
      .createQueryBuilder(ApiKeyRow, 'key')
      .select('key.id', 'id')
      .where('key.id IN (:...ids) AND key.revokedAt IS NOT NULL', { ids: apiKeyIds })
      .getRawMany<{ id: string }>();
    return rows.map((row) => row.id);
  }
}
