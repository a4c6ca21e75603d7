import { Args, Ctx, FieldResolver, Query, Resolver, Root, Subscription } from 'type-graphql';
import { Code } from '../codes/code.entity';
import type { GraphQLContext } from '../graphql/graphql-context';
import type { Connection } from '../pagination/connection.types';
import type { ScanEvent } from '../pubsub';
import { Scan } from './scan.entity';
import { scanFromEvent } from './scan.service';
import { CodeScansArgs, ScanConnection, ScannedArgs, ScansArgs } from './scan.types';

@Resolver(() => Scan)
export class ScanResolver {
  @Query(() => ScanConnection)
  async scans(@Args(() => ScansArgs) args: ScansArgs, @Ctx() { request, services }: GraphQLContext): Promise<Connection<Scan>> {
    return ScanConnection.of(await services.scans.list(request, args));
  }

  @Subscription(() => Scan, {
    description: 'every scan, as soon as its webhook is stored; all arguments narrow it',
    subscribe: async ({ args, context }) => {
      const { services, request, dropConnection } = context as GraphQLContext;
      const filter = args as ScannedArgs;
      if (filter.codeId != null) await services.codes.requireById(request, filter.codeId, 'codeId');
      return services.feed.subscribe(filter, () => dropConnection?.('subscriber too slow: its backlog exceeded the limit'));
    },
  })
  scanned(@Root() event: ScanEvent, @Args(() => ScannedArgs) _filter: ScannedArgs): Scan {
    return scanFromEvent(event);
  }

  @FieldResolver(() => Code, { nullable: true, description: 'null when the ref matches no code generated here (an orphan scan)' })
  code(@Root() scan: Scan, @Ctx() { loaders }: GraphQLContext): Promise<Code | null> | Code | null {
    if (scan.codeAfterScan !== undefined) return scan.codeAfterScan;
    return loaders.codeOfScan.load({ pageId: scan.pageId, ref: scan.ref });
  }
}

@Resolver(() => Code)
export class CodeScansResolver {
  @FieldResolver(() => ScanConnection, { description: 'scans of this code, newest first' })
  async scans(@Root() code: Code, @Args(() => CodeScansArgs) args: CodeScansArgs, @Ctx() { request, services }: GraphQLContext): Promise<Connection<Scan>> {
    const page = await services.scans.list(request, { pageId: code.pageId, ref: code.ref, first: args.first, after: args.after });
    // Every scan of (page, ref) is counted on the code: no COUNT(*) needed.
    return ScanConnection.of({ ...page, totalCount: async () => code.scanCount });
  }
}
