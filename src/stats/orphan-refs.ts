import { Args, ArgsType, Ctx, Field, ID, Int, ObjectType, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import { STATIC_REF_KEY } from '../db/transformers';
import { connectionType, type Connection, type ListPage } from '../pagination/connection.types';
import { decodeCursor, encodeCursor, pageSize } from '../pagination/cursor';
import { PageArgs } from '../pagination/page.args';

@ObjectType({ description: 'A ref people scanned that no code has (a code generated for it later counts these scans).' })
export class OrphanRef {
  @Field(() => ID)
  pageId!: string;

  @Field(() => String)
  ref!: string;

  @Field(() => Int)
  scanCount!: number;

  @Field(() => Date)
  lastScannedAt!: Date;
}

export const OrphanRefConnection = connectionType(OrphanRef, 'OrphanRef');

@ArgsType()
export class OrphanRefFilterArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;
}

const ORPHANS_ORDERING = 'ORPHANS_SCAN_COUNT_DESC';

interface OrphanRow {
  page_id: string;
  ref: string;
  scan_count: number | string;
  last_scanned_at: number | string;
}

/**
 * Orphan refs: the counters no code has claimed (ref_counter.has_code = 0), most scanned
 * first, then by (page, ref). Both indexes of the migration are partial over the orphans,
 * so a page of them is read directly, whatever the number of codes. The page's static
 * ref (scans of a page without a static code) is not a ref, so not listed.
 */
export class OrphanRefService {
  constructor(private readonly db: Database) {}

  async list(
    context: RequestContext,
    request: { pageId?: string | null; first?: number | null; after?: string | null },
  ): Promise<ListPage<OrphanRef>> {
    const first = pageSize(request.first);
    const scope = context.access.readScope(request.pageId);
    const { values: parameters, bind } = this.db.parameters();
    // Bound in the order the text reads: SQLite's placeholders are positional.
    const counters = scope.table('ref_counter', bind);
    const conditions = ['has_code = 0', `ref <> ${bind(STATIC_REF_KEY)}`];
    const filterParameters = [...parameters];
    const filter = conditions.join(' AND ');

    const page = [...conditions];
    if (request.after != null) {
      const [scanCount, pageId, ref] = decodeCursor(request.after, ORPHANS_ORDERING, ['number', 'string', 'string']);
      // After the cursor in (scan_count DESC, page_id, ref); each placeholder is bound in order.
      const fewer = `scan_count < ${bind(scanCount)}`;
      const sameCount = `scan_count = ${bind(scanCount)}`;
      const later = `(page_id > ${bind(pageId)} OR (page_id = ${bind(pageId)} AND ref > ${bind(ref)}))`;
      page.push(`(${fewer} OR (${sameCount} AND ${later}))`);
    }
    const rows = await this.db.read<OrphanRow>(
      `SELECT page_id, ref, scan_count, last_scanned_at FROM ${counters} WHERE ${page.join(' AND ')}
       ORDER BY scan_count DESC, page_id, ref LIMIT ${bind(first + 1)}`,
      parameters,
    );
    const orphans = rows.slice(0, first).map((row) =>
      Object.assign(new OrphanRef(), {
        pageId: row.page_id,
        ref: row.ref,
        scanCount: Number(row.scan_count),
        lastScannedAt: new Date(Number(row.last_scanned_at)),
      }),
    );
    return {
      items: orphans,
      cursors: orphans.map((orphan) => encodeCursor(ORPHANS_ORDERING, [orphan.scanCount, orphan.pageId, orphan.ref])),
      hasNextPage: rows.length > first,
      totalCount: async () => {
        const [row] = await this.db.read<{ total: number | string }>(
          `SELECT COUNT(*) AS total FROM ${counters} WHERE ${filter}`,
          filterParameters,
        );
        return Number(row.total);
      },
    };
  }
}

/** What the statistics resolvers need of the GraphQL context. */
export interface StatsContext {
  request: RequestContext;
  services: { orphanRefs: OrphanRefService };
}

@Resolver(() => OrphanRef)
export class OrphanRefResolver {
  // Parameters in reverse (see CodeResolver.codes): the schema reads orphanRefs(pageId, first, after).
  @Query(() => OrphanRefConnection, { description: 'refs scanned that no code has, most scanned first' })
  async orphanRefs(
    @Ctx() { request, services }: StatsContext,
    @Args(() => PageArgs) page: PageArgs,
    @Args(() => OrphanRefFilterArgs) filter: OrphanRefFilterArgs,
  ): Promise<Connection<OrphanRef>> {
    return OrphanRefConnection.of(await services.orphanRefs.list(request, { ...filter, ...page }));
  }
}
