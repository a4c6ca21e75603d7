import { randomBytes, randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { Access, type PageScope } from '../access';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { epochMillisOrNever, nullableRef, pageRefKey, refKey } from '../db/transformers';
import { BadUserInputError, NotFoundError } from '../errors';
import type { CodeImageRow } from '../images/code-image.entity';
import type { GenerateRateLimit } from '../auth/generate-rate-limit';
import type { ImageStore } from '../images/image.store';
import { BatchLoader } from '../graphql/batch-loader';
import { CodeProviderKind, type CodeImage } from '../images/image.types';
import type { PageService } from '../pages/page.service';
import type { ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import { Code, CodeTracking, CodeType } from './code.entity';
import { mMeLink } from './m-me-link';
import { CODE_COLUMNS, codeFromRow, type CodeRow } from './code.wire';
import { validateImageSize, validateLabel, validateRef, DEFAULT_IMAGE_SIZE } from './code.validation';
import type { CodeImageProvider } from './providers/code-image-provider';
import type { RefCounterStore } from './ref-counter.store';
import { describeStyle, sameStyle, validateStyle, type CodeStyle, type CodeStyleRequest } from './code-style';
import { CodeStyleStore } from './code-style.store';

/** (page, ref) pairs per query of findByPageRefs. */
const PAGE_REF_CHUNK = 200;

/** Where REDIRECT links live: `<PUBLIC_URL>/s/<slug>`. */
export const REDIRECT_PATH = '/s/';
const SLUG_LENGTH = 10;
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A REDIRECT code's slug: 10 base62 characters, 59 random bits: short on a print, not guessable. */
function newSlug(): string {
  let rest = BigInt(`0x${randomBytes(8).toString('hex')}`);
  let slug = '';
  for (let index = 0; index < SLUG_LENGTH; index++) {
    slug += BASE62[Number(rest % 62n)];
    rest /= 62n;
  }
  return slug;
}

/** What generate was asked for, validated. */
interface WantedCode {
  pageId: string;
  ref: string | null;
  label: string | null | undefined;
  imageSize: number;
  tracking: CodeTracking;
  /** validated; null asks for a plain code, undefined for whatever style the code has (none when new) */
  style: CodeStyle | null | undefined;
}

/** What a wanted code is drawn with: the style it has, or for a new code the style asked for. */
type Drawn = WantedCode & { slug: string | null; drawnStyle: CodeStyle | null };

/** A code's style is chosen when it is created: asking for another later is refused (README, "Branded codes"). */
function styleRefusal(field: string, code: Code, style: CodeStyle | null): BadUserInputError {
  const which = code.ref === null ? "The page's static code" : `The code of ref ${JSON.stringify(code.ref)}`;
  return new BadUserInputError(
    field,
    `${which} exists with ${describeStyle(style)}; a code's style is chosen when it is created: omit style to get this code, or use a new ref for another style.`,
  );
}

/** The refs of a generateCodes call, checked: BAD_USER_INPUT on `refs`, `refs[i]` or `series`. */
function refsOf(request: GenerateCodesRequest): string[] {
  const { refs, series } = request;
  if ((refs == null) === (series == null)) {
    throw new BadUserInputError(refs == null ? 'refs' : 'series', 'Give either refs or series, not both');
  }
  if (refs != null) {
    if (refs.length < 1 || refs.length > MAX_CODES_PER_CALL) {
      throw new BadUserInputError('refs', `refs must hold 1 to ${MAX_CODES_PER_CALL} refs, got ${refs.length}`);
    }
    const seen = new Map<string, number>();
    return refs.map((ref, index) => {
      validateRef(ref, `refs[${index}]`);
      const earlier = seen.get(ref);
      if (earlier !== undefined) throw new BadUserInputError(`refs[${index}]`, `ref ${JSON.stringify(ref)} repeats refs[${earlier}]`);
      seen.set(ref, index);
      return ref;
    });
  }
  const { prefix, from, to } = series as NonNullable<GenerateCodesRequest['series']>;
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from || to - from + 1 > MAX_CODES_PER_CALL) {
    throw new BadUserInputError('series', `series must go from a number to one not smaller, 1 to ${MAX_CODES_PER_CALL} codes (from 0 up)`);
  }
  return Array.from({ length: to - from + 1 }, (_, index) => {
    const ref = `${prefix}${from + index}`;
    try {
      return validateRef(ref, 'series');
    } catch (error) {
      if (error instanceof BadUserInputError) {
        throw new BadUserInputError('series', `series makes the ref ${JSON.stringify(ref.slice(0, 60))}: ${error.message}`);
      }
      throw error;
    }
  });
}

/**
 * Another request created the code while this one rendered an image, with a slug (REDIRECT)
 * or a style of its own: the images must be drawn again for that code.
 */
class CodeChangedMeanwhile extends Error {}

/** A code's tracking is chosen when it is created: asking for the other later is refused. */
function trackingRefused(code: Code): BadUserInputError {
  return new BadUserInputError(
    'tracking',
    `This code was created with tracking ${code.tracking}; tracking is chosen when a code is created (ask with tracking: ${code.tracking}).`,
  );
}

/** How generateAll refuses a code that exists with another tracking or style (index: in the call's refs). */
interface Refusals {
  tracking: (code: Code, index: number) => BadUserInputError;
  style: (code: Code, stored: CodeStyle | null, index: number) => BadUserInputError;
}

export enum CodeOrderBy {
  CREATED_AT_DESC = 'CREATED_AT_DESC',
  CREATED_AT_ASC = 'CREATED_AT_ASC',
  SCAN_COUNT_DESC = 'SCAN_COUNT_DESC',
  LAST_SCANNED_AT_DESC = 'LAST_SCANNED_AT_DESC',
}

export interface GenerateCodeRequest {
  pageId?: string | null;
  type?: CodeType | null;
  imageSize?: number | null;
  /** undefined/null for the page's static code */
  ref?: string | null;
  label?: string | null;
  tracking?: CodeTracking | null;
  style?: CodeStyleRequest | null;
}

export interface GenerateCodesRequest {
  pageId?: string | null;
  refs?: readonly string[] | null;
  series?: { prefix: string; from: number; to: number } | null;
  imageSize?: number | null;
  tracking?: CodeTracking | null;
  style?: CodeStyleRequest | null;
}

/** Codes of one generateCodes call. */
export const MAX_CODES_PER_CALL = 500;

export interface ListCodesRequest {
  pageId?: string | null;
  ref?: string | null;
  first?: number | null;
  after?: string | null;
  orderBy?: CodeOrderBy | null;
}

/**
 * Each ordering is a keyset over (sort column, created_at, id), which the indexes of
 * the code table serve directly. Direction applies to all three columns.
 */
const ORDERINGS: Record<CodeOrderBy, { column: 'scan_count' | 'last_scanned_at' | null; descending: boolean }> = {
  [CodeOrderBy.CREATED_AT_DESC]: { column: null, descending: true },
  [CodeOrderBy.CREATED_AT_ASC]: { column: null, descending: false },
  [CodeOrderBy.SCAN_COUNT_DESC]: { column: 'scan_count', descending: true },
  [CodeOrderBy.LAST_SCANNED_AT_DESC]: { column: 'last_scanned_at', descending: true },
};

function sortKeyOf(code: Code, orderBy: CodeOrderBy): (string | number)[] {
  const tail = [code.createdAt.getTime(), code.id];
  switch (orderBy) {
    case CodeOrderBy.SCAN_COUNT_DESC:
      return [code.scanCount, ...tail];
    case CodeOrderBy.LAST_SCANNED_AT_DESC:
      return [code.lastScannedAt?.getTime() ?? 0, ...tail];
    default:
      return tail;
  }
}

function isUniqueViolation(error: unknown): boolean {
  const { code, message } = error as { code?: string; message?: string };
  return (
    code === '23505' ||
    code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    /UNIQUE constraint failed/.test(message ?? '')
  );
}

export class CodeService {
  private readonly styles: CodeStyleStore;
  /** Code.svgUrl of a list of codes in one query (a batch lives one tick: nothing goes stale). */
  private readonly vectorIds: BatchLoader<string, string>;

  constructor(
    private readonly db: Database,
    private readonly pages: PageService,
    private readonly provider: CodeImageProvider,
    private readonly images: ImageStore,
    private readonly counters: RefCounterStore,
    private readonly rateLimit: GenerateRateLimit,
    /** PUBLIC_URL (read when needed: without it, known once the server listens) */
    private readonly publicUrl: () => string,
  ) {
    this.styles = new CodeStyleStore(db);
    this.vectorIds = new BatchLoader(
      (codeIds) => this.images.vectorIdsOf(this.db.manager, codeIds),
      (codeId) => codeId,
    );
  }

  /**
   * Returns the code of (page, ref), creating it if needed, with an image of the
   * requested size. The provider runs outside any transaction; the code row and its
   * image are then written in one transaction, so a failure stores nothing.
   */
  async generate(context: RequestContext, request: GenerateCodeRequest): Promise<Code> {
    const imageSize = validateImageSize(request.imageSize ?? DEFAULT_IMAGE_SIZE);
    const ref = request.ref == null ? null : validateRef(request.ref);
    const label = validateLabel(request.label);
    if (request.type != null && request.type !== CodeType.STANDARD) {
      throw new BadUserInputError('type', 'type must be STANDARD');
    }
    const tracking = this.validTracking(request.tracking);
    const style = request.style == null ? undefined : validateStyle(request.style);
    const page = await this.pages.require(context, request.pageId);
    const wanted = { pageId: page.id, ref, label, imageSize, tracking, style };
    const [code] = await this.rateLimit.spend(context.access, 1, () =>
      this.generateAll(context, [wanted], {
        tracking: trackingRefused,
        style: (existing, stored) => styleRefusal('style', existing, stored),
      }),
    );
    return code;
  }

  /**
   * Codes for many refs of one page, all or nothing: every ref is checked before anything
   * is rendered (BAD_USER_INPUT on `refs[i]` or `series`), every image is rendered before
   * the one transaction that stores them all. Refs that have a code return it (with an
   * image of this size). The rate limit counts each code. Results follow the refs' order.
   */
  async generateMany(context: RequestContext, request: GenerateCodesRequest): Promise<Code[]> {
    const refs = refsOf(request);
    const imageSize = validateImageSize(request.imageSize ?? DEFAULT_IMAGE_SIZE);
    const tracking = this.validTracking(request.tracking);
    const style = request.style == null ? undefined : validateStyle(request.style);
    const page = await this.pages.require(context, request.pageId);
    const wanted = refs.map((ref) => ({ pageId: page.id, ref, label: undefined, imageSize, tracking, style }));
    return this.rateLimit.spend(context.access, wanted.length, () =>
      this.generateAll(context, wanted, {
        tracking: (code, index) =>
          new BadUserInputError(
            `refs[${index}]`,
            `The code of ref ${JSON.stringify(code.ref)} was created with tracking ${code.tracking}; tracking is chosen when a code is created.`,
          ),
        style: (code, stored, index) => styleRefusal(`refs[${index}]`, code, stored),
      }),
    );
  }

  /**
   * Codes of one page, in the order wanted (generate and generateMany): existing codes
   * with an image of the size need no provider call; the others' images are rendered (or
   * downloaded) first, then everything is written in one transaction, so a failure stores
   * nothing. `refuseTracking` names the error for a code created with the other tracking.
   * Another request creating one of these REDIRECT codes meanwhile (with a slug of its own)
   * starts it again once: the images must encode that code's link.
   */
  private async generateAll(context: RequestContext, wanted: WantedCode[], refuse: Refusals): Promise<Code[]> {
    try {
      return await this.generateOnce(context, wanted, refuse);
    } catch (error) {
      if (error instanceof CodeChangedMeanwhile) return this.generateOnce(context, wanted, refuse);
      throw error;
    }
  }

  private async generateOnce(context: RequestContext, wanted: WantedCode[], refuse: Refusals): Promise<Code[]> {
    const pageId = wanted[0].pageId;
    const existing = await this.findByPageRefs(
      context.access.readScope(pageId),
      wanted.map(({ ref }) => ({ pageId, ref })),
    );
    const existingIds = [...existing.values()].map((code) => code.id);
    const [styles, vectors] = await Promise.all([
      this.styles.read(this.db.manager, existingIds),
      this.provider.kind === CodeProviderKind.LOCAL ? this.images.vectorIdsOf(this.db.manager, existingIds) : new Map<string, string>(),
    ]);
    wanted.forEach((item, index) => {
      const code = existing.get(pageRefKey(pageId, item.ref));
      if (code && code.tracking !== item.tracking) throw refuse.tracking(code, index);
      const stored = code ? (styles.get(code.id) ?? null) : null;
      if (code && item.style !== undefined && !sameStyle(item.style, stored)) throw refuse.style(code, stored, index);
    });
    // The page's own token, read (and decrypted) only when a provider that calls the Graph API renders.
    let pageAccessToken: Promise<string> | undefined;
    const tokenForProvider = () => (pageAccessToken ??= this.pages.accessTokenOf(context, pageId));
    // Rendered (or downloaded) one after the other: a series of 500 must not hold 500 images
    // in flight at once, and the event loop gets a turn between two.
    const rendered: { item: Drawn; image: CodeImage | null }[] = [];
    for (const item of wanted) {
      const code = existing.get(pageRefKey(pageId, item.ref));
      const stored = code && (await this.images.findForCode(this.db.manager, code.id, item.imageSize));
      const slug = item.tracking === CodeTracking.REDIRECT ? (code?.slug ?? newSlug()) : null;
      // An existing code keeps its style: each new size (and its SVG) is drawn as the first was.
      const drawnStyle = code ? (styles.get(code.id) ?? null) : (item.style ?? null);
      // A LOCAL code made before SVGs were stored gets its SVG the next time it is asked for.
      const missingVector = code !== undefined && this.provider.kind === CodeProviderKind.LOCAL && !vectors.has(code.id);
      if (stored && !missingVector) {
        rendered.push({ item: { ...item, slug, drawnStyle }, image: null });
        continue;
      }
      const link = this.linkOf({ pageId, ref: item.ref, tracking: item.tracking, slug });
      const image = await this.provider.obtain({
        pageId,
        ref: item.ref,
        imageSize: item.imageSize,
        link,
        style: drawnStyle,
        ...(this.provider.needsAccessToken ? { pageAccessToken: await tokenForProvider() } : {}),
      });
      rendered.push({ item: { ...item, slug, drawnStyle }, image });
    }
    const storeAll = () =>
      this.db.transaction(async (manager) => {
        const codes: Code[] = [];
        for (const { item, image } of rendered) codes.push(await this.storeOrPoint(manager, item, image));
        return codes;
      });
    try {
      return await storeAll();
    } catch (error) {
      // Another request created the same (page, ref) or image size meanwhile; the
      // second attempt finds its rows and adds to them.
      if (!isUniqueViolation(error)) throw error;
      return storeAll();
    }
  }

  /** Stores a rendered image (see store), or points the code at the image of this size it already has. */
  private async storeOrPoint(manager: EntityManager, wanted: Drawn, image: CodeImage | null): Promise<Code> {
    if (image) return this.store(manager, wanted, image);
    const found = await this.findWithImage(manager, wanted.pageId, wanted.ref, wanted.imageSize);
    if (!found.code || !found.stored) throw new CodeChangedMeanwhile(); // removed meanwhile: start again
    return this.pointAt(manager, found.code.id, found.stored.id, found.stored.size, found.stored.provider, wanted.label);
  }

  private validTracking(requested: CodeTracking | null | undefined): CodeTracking {
    const tracking = requested ?? CodeTracking.DIRECT;
    if (!Object.values(CodeTracking).includes(tracking)) throw new BadUserInputError('tracking', 'tracking must be DIRECT or REDIRECT');
    if (tracking === CodeTracking.REDIRECT && this.provider.kind !== CodeProviderKind.LOCAL) {
      throw new BadUserInputError(
        'tracking',
        "A REDIRECT code is a QR code of the gateway's link: it needs CODE_PROVIDER=local (a Messenger Code can only open the page).",
      );
    }
    return tracking;
  }

  private async store(manager: EntityManager, wanted: Drawn, image: CodeImage): Promise<Code> {
    const { pageId, ref, label, imageSize, tracking, slug, drawnStyle } = wanted;
    const now = new Date();
    const found = await this.findWithImage(manager, pageId, ref, imageSize);
    let code = found.code;
    if (code) {
      if (code.tracking !== tracking) throw trackingRefused(code);
      if (code.slug !== slug) throw new CodeChangedMeanwhile();
      // Created meanwhile with another style: start again, which refuses or draws it as that code is.
      if (!sameStyle((await this.styles.read(manager, [code.id])).get(code.id) ?? null, drawnStyle)) throw new CodeChangedMeanwhile();
      await this.storeVectorIfMissing(manager, code.id, image, now);
    }
    if (code && found.stored) return this.pointAt(manager, code.id, found.stored.id, found.stored.size, found.stored.provider, label);
    const imageId = randomUUID();
    if (!code) {
      const counted = await this.counters.claim(manager, pageId, ref);
      code = manager.create(Code, {
        id: randomUUID(),
        pageId,
        ref,
        type: CodeType.STANDARD,
        label: label ?? null,
        provider: this.provider.kind,
        imageSize,
        imageId,
        createdAt: now,
        scanCount: counted.scanCount,
        lastScannedAt: epochMillisOrNever.from(counted.lastScannedAt) as Date | null,
        tracking,
        slug,
        visitCount: 0,
      });
      await manager.insert(Code, code);
      if (drawnStyle) await this.styles.insert(manager, code.id, drawnStyle);
      await this.storeVector(manager, code.id, image, now);
    }
    await this.images.insert(
      manager,
      { id: imageId, codeId: code.id, size: imageSize, provider: this.provider.kind, createdAt: now },
      image,
    );
    return this.pointAt(manager, code.id, imageId, imageSize, this.provider.kind, label);
  }

  /** Stores the SVG the provider drew (LOCAL codes), unless the code has one: one SVG per code, whatever its sizes. */
  private async storeVectorIfMissing(manager: EntityManager, codeId: string, image: CodeImage, now: Date): Promise<void> {
    if (image.svg && (await this.images.vectorIdsOf(manager, [codeId])).size === 0) await this.storeVector(manager, codeId, image, now);
  }

  /** Stores the SVG the provider drew, if it drew one (a new code has none yet). */
  private async storeVector(manager: EntityManager, codeId: string, image: CodeImage, now: Date): Promise<void> {
    if (image.svg) await this.images.insertVector(manager, { id: randomUUID(), codeId, createdAt: now }, image.svg);
  }

  /** The code of (page, ref), if any, and its stored image of `imageSize`, if any. */
  private async findWithImage(
    manager: EntityManager,
    pageId: string,
    ref: string | null,
    imageSize: number,
  ): Promise<{ code: Code | null; stored: CodeImageRow | null }> {
    // page-scope exempt: the row this write is about to store or reuse, in its transaction; its page was checked before.
    const code = await manager.findOneBy(Code, { pageId, ref: refKey(ref) });
    return { code, stored: code && (await this.images.findForCode(manager, code.id, imageSize)) };
  }

  /** Makes an image the code's current one (and updates the label when one was given). */
  private async pointAt(
    manager: EntityManager,
    codeId: string,
    imageId: string,
    imageSize: number,
    provider: Code['provider'],
    label: string | null | undefined,
  ): Promise<Code> {
    await manager.update(Code, { id: codeId }, { imageId, imageSize, provider, ...(label !== undefined ? { label } : {}) });
    // page-scope exempt: the row this write just updated, in its transaction.
    return manager.findOneByOrFail(Code, { id: codeId });
  }

  /**
   * The code a REDIRECT link leads to: a hot path, so one prepared read of what the
   * redirect needs. The slug is the credential (a capability URL), so every page is searched.
   */
  async findRedirect(slug: string): Promise<{ id: string; pageId: string; ref: string | null } | undefined> {
    const { values, bind } = this.db.parameters();
    const rows = await this.db.read<{ id: string; page_id: string; ref: string }>(
      `SELECT id, page_id, ref FROM ${Access.capabilityUrl().scope.table('code', bind)} WHERE slug = ${bind(slug)}`,
      values,
    );
    const row = rows[0];
    return row && { id: row.id, pageId: row.page_id, ref: nullableRef.from(row.ref) as string | null };
  }

  /** The code, if it exists and is on one of the request's pages (else it does not exist for it). */
  async findById(context: RequestContext, id: string): Promise<Code | null> {
    const [code] = await this.readByIds(context.access.scope, [id]);
    return code ?? null;
  }

  /**
   * Codes for arguments naming many (print sheets), in the order given: NOT_FOUND on
   * `field[i]` for the first that does not exist or lies outside the request's pages.
   */
  async requireManyById(context: RequestContext, ids: readonly string[], field: string): Promise<Code[]> {
    const found = new Map<string, Code>();
    const distinct = [...new Set(ids)];
    for (let start = 0; start < distinct.length; start += PAGE_REF_CHUNK) {
      for (const code of await this.readByIds(context.access.scope, distinct.slice(start, start + PAGE_REF_CHUNK)))
        found.set(code.id, code);
    }
    return ids.map((id, index) => {
      const code = found.get(id);
      if (!code) throw new NotFoundError(`${field}[${index}]`, `Unknown code "${id}".`);
      return code;
    });
  }

  private async readByIds(scope: PageScope, ids: readonly string[]): Promise<Code[]> {
    const { values, bind } = this.db.parameters();
    const sql = `SELECT ${CODE_COLUMNS} FROM ${scope.table('code', bind)} WHERE id IN (${ids.map(bind).join(', ')})`;
    // One id (code(id:), every codeId argument) is a hot path worth a prepared statement; lists of ids vary in length.
    const rows: CodeRow[] = ids.length === 1 ? await this.db.read<CodeRow>(sql, values) : await this.db.dataSource.query(sql, values);
    return rows.map(codeFromRow);
  }

  /** For arguments that must name an existing code: NOT_FOUND on `field` otherwise. */
  async requireById(context: RequestContext, id: string, field: string): Promise<Code> {
    const code = await this.findById(context, id);
    if (!code) throw new NotFoundError(field, `Unknown code "${id}".`);
    return code;
  }

  /**
   * The codes of many (page, ref) pairs, keyed by pageRefKey: Scan.code without N+1. One
   * query per PAGE_REF_CHUNK pairs: SQLite refuses an expression deeper than 1,000 terms.
   */
  async findByPageRefs(scope: PageScope, keys: { pageId: string; ref: string | null }[]): Promise<Map<string, Code>> {
    const distinct = [...new Map(keys.map((key) => [pageRefKey(key.pageId, key.ref), key])).values()];
    const found = new Map<string, Code>();
    for (let start = 0; start < distinct.length; start += PAGE_REF_CHUNK) {
      const { values, bind } = this.db.parameters();
      const from = scope.table('code', bind);
      const pairs = distinct
        .slice(start, start + PAGE_REF_CHUNK)
        .map((key) => `(page_id = ${bind(key.pageId)} AND ref = ${bind(refKey(key.ref))})`);
      for (const row of await this.db.dataSource.query(`SELECT ${CODE_COLUMNS} FROM ${from} WHERE ${pairs.join(' OR ')}`, values)) {
        const code = codeFromRow(row as CodeRow);
        found.set(pageRefKey(code.pageId, code.ref), code);
      }
    }
    return found;
  }

  /** What the code encodes: the m.me link, or for a REDIRECT code the gateway's link that counts the visit first. */
  linkOf(code: Pick<Code, 'pageId' | 'ref' | 'tracking' | 'slug'>): string {
    if (code.tracking === CodeTracking.REDIRECT && code.slug !== null) return `${this.publicUrl()}${REDIRECT_PATH}${code.slug}`;
    return mMeLink(code.pageId, code.ref);
  }

  imageUrl(code: Code): string {
    return this.images.urlOf(code.imageId);
  }

  /** URL of the code's SVG: null for FACEBOOK codes (their image is a download) and for a LOCAL code stored before SVGs were. */
  async svgUrl(code: Code): Promise<string | null> {
    if (code.provider !== CodeProviderKind.LOCAL) return null;
    const id = await this.vectorIds.load(code.id);
    return id === null ? null : this.images.urlOf(id);
  }

  async list(context: RequestContext, request: ListCodesRequest): Promise<ListPage<Code>> {
    const first = pageSize(request.first);
    const scope = context.access.readScope(request.pageId);
    const orderBy = request.orderBy ?? CodeOrderBy.CREATED_AT_DESC;
    const ordering = ORDERINGS[orderBy];
    const ref = request.ref == null ? null : validateRef(request.ref, 'ref');

    const { values: parameters, bind } = this.db.parameters();
    // First: the statement's text begins with it, and SQLite's placeholders are positional.
    const codeTable = scope.table('code', bind);
    const conditions: string[] = [];
    if (ref != null) conditions.push(`ref = ${bind(ref)}`);
    const filter = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const filterParameters = [...parameters];

    const keyColumns = [...(ordering.column ? [ordering.column] : []), 'created_at', 'id'];
    const page = [...conditions];
    if (request.after != null) {
      const shape = keyColumns.map((column) => (column === 'id' ? 'string' : 'number') as 'string' | 'number');
      const key = decodeCursor(request.after, orderBy, shape);
      // A row-value comparison walks the composite index from the cursor on.
      page.push(`(${keyColumns.join(', ')}) ${ordering.descending ? '<' : '>'} (${key.map(bind).join(', ')})`);
    }
    const direction = ordering.descending ? 'DESC' : 'ASC';
    const rows = await this.db.read<CodeRow>(
      `SELECT ${CODE_COLUMNS} FROM ${codeTable} ${page.length > 0 ? `WHERE ${page.join(' AND ')}` : ''}
       ORDER BY ${keyColumns.map((column) => `${column} ${direction}`).join(', ')} LIMIT ${bind(first + 1)}`,
      parameters,
    );

    const codes = rows.slice(0, first).map(codeFromRow);
    return {
      items: codes,
      cursors: codes.map((code) => encodeCursor(orderBy, sortKeyOf(code, orderBy))),
      hasNextPage: rows.length > first,
      totalCount: async () => {
        const [row] = await this.db.read<{ total: number | string }>(
          `SELECT COUNT(*) AS total FROM ${codeTable} ${filter}`,
          filterParameters,
        );
        return Number(row.total);
      },
    };
  }
}
