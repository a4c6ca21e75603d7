import { Args, Ctx, FieldResolver, Query, Resolver, Root, Subscription } from 'type-graphql';
import { Code } from '../codes/code.entity';
import type { CodeService } from '../codes/code.service';
import type { RequestContext } from '../context';
import type { PageScope } from '../access';
import { pageRefKey } from '../db/transformers';
import { BadUserInputError } from '../errors';
import { BatchLoader } from '../graphql/batch-loader';
import { decodeCursor, encodeCursor } from '../pagination/cursor';
import type { Connection } from '../pagination/connection.types';
import { PageArgs } from '../pagination/page.args';
import { scanFromEvent, type ScanEvent, type ScanFeed } from './scan-feed';
import { Scan } from './scan.entity';
import type { ScanService } from './scan.service';
import { ScanConnection, ScanFilterArgs, ScannedArgs } from './scan.types';

/** The ordering name inside stream cursors: a cursor of a list is refused as `after`, and the reverse. */
const STREAM_ORDERING = 'STORED';

export function streamCursorOf(position: number): string {
  return encodeCursor(STREAM_ORDERING, [position]);
}

/** The stream position a cursor stands for; BAD_USER_INPUT on `after` when it is not one. */
export function streamPositionOf(cursor: string): number {
  const [position] = decodeCursor(cursor, STREAM_ORDERING, ['number']) as [number];
  if (!Number.isSafeInteger(position) || position < 0) throw new BadUserInputError('after', 'after is not a Scan.streamCursor');
  return position;
}

export interface ScanLoaders {
  codeOfScan: BatchLoader<{ pageId: string; ref: string | null }, Code>;
}

/** Per request: a list of scans resolves its codes in one query. */
export function createScanLoaders(codes: CodeService, scope: PageScope): ScanLoaders {
  return {
    codeOfScan: new BatchLoader(
      (keys) => codes.findByPageRefs(scope, keys),
      (key) => pageRefKey(key.pageId, key.ref),
    ),
  };
}

/** What the scan resolvers need of the GraphQL context. */
export interface ScansContext {
  request: RequestContext;
  services: { codes: CodeService; scans: ScanService; feed: ScanFeed };
  loaders: ScanLoaders;
  /** Over WebSocket: drops the connection (a subscriber too slow to keep up). */
  dropConnection?: (reason: string) => void;
}

/**
 * Subscription fields whose arguments only choose which events a subscriber gets: their
 * resolvers ignore them (see subscribeSharingResults, which lets subscribers share results).
 */
export const EVENT_CHOOSING_SUBSCRIPTIONS: ReadonlySet<string> = new Set(['scanned']);

@Resolver(() => Scan)
export class ScanResolver {
  // Parameters in reverse (see CodeResolver.codes): the schema reads scans(pageId, codeId, first, after).
  @Query(() => ScanConnection)
  async scans(
    @Ctx() { request, services }: ScansContext,
    @Args(() => PageArgs) page: PageArgs,
    @Args(() => ScanFilterArgs) filter: ScanFilterArgs,
  ): Promise<Connection<Scan>> {
    return ScanConnection.of(await services.scans.list(request, { ...filter, ...page }));
  }

  @Subscription(() => Scan, {
    description: 'every scan, as soon as its webhook is stored; all arguments narrow it',
    subscribe: async ({ args, context }) => {
      const { services, request, dropConnection } = context as ScansContext;
      const { after, ...filter } = args as ScannedArgs;
      const afterPosition = after == null ? undefined : streamPositionOf(after);
      if (filter.codeId != null) await services.codes.requireById(request, filter.codeId, 'codeId');
      // Narrowed at the source: events of other pages never reach this subscriber's queue.
      const scoped = { ...filter, scope: request.access.scope };
      const onOverflow = () => dropConnection?.('subscriber too slow: its backlog exceeded the limit');
      if (afterPosition === undefined) return services.feed.subscribe(scoped, onOverflow);
      return services.feed.subscribeAfter(scoped, afterPosition, onOverflow);
    },
  })
  // The arguments choose the events (subscribe above) and must not shape the result: EVENT_CHOOSING_SUBSCRIPTIONS.
  scanned(@Root() event: ScanEvent, @Args(() => ScannedArgs) _filter: ScannedArgs): Scan {
    return scanFromEvent(event);
  }

  @FieldResolver(() => String, {
    description: 'opaque; increases in the order scans were stored, across instances (resume `scanned` with it as `after`)',
  })
  streamCursor(@Root() scan: Scan): string {
    return streamCursorOf(scan.streamSeq);
  }

  @FieldResolver(() => Code, { nullable: true, description: 'null when the ref matches no code generated here (an orphan scan)' })
  code(@Root() scan: Scan, @Ctx() { loaders }: ScansContext): Promise<Code | null> | Code | null {
    if (scan.codeAfterScan !== undefined) return scan.codeAfterScan;
    return loaders.codeOfScan.load({ pageId: scan.pageId, ref: scan.ref });
  }
}

@Resolver(() => Code)
export class CodeScansResolver {
  @FieldResolver(() => ScanConnection, { description: 'scans of this code, newest first' })
  async scans(
    @Root() code: Code,
    @Args(() => PageArgs) page: PageArgs,
    @Ctx() { request, services }: ScansContext,
  ): Promise<Connection<Scan>> {
    const scans = await services.scans.list(request, { pageId: code.pageId, ref: code.ref, ...page });
    // Every scan of (page, ref) is counted on the code: no COUNT(*) needed.
    return ScanConnection.of({ ...scans, totalCount: async () => code.scanCount });
  }
}
