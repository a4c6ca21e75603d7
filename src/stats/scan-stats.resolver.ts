import { Arg, Args, Ctx, FieldResolver, Int, Query, Resolver, Root } from 'type-graphql';
import { Code } from '../codes/code.entity';
import type { RequestContext } from '../context';
import type { ScanStatsService } from './scan-stats.service';
import { CodeCount, ScanStats, ScanStatsFilterArgs, StatsWindowArgs } from './scan-stats.types';

const DEFAULT_TOP_CODES = 10;

/** What the statistics resolvers need of the GraphQL context. */
export interface ScanStatsContext {
  request: RequestContext;
  services: { scanStats: ScanStatsService };
}

@Resolver(() => ScanStats)
export class ScanStatsResolver {
  // Parameters in reverse (see CodeResolver.codes): the schema reads scanStats(pageId, codeId, from, to, interval, timeZone).
  @Query(() => ScanStats, {
    description: 'scans and visits in [from, to), in buckets of local time; every page the key sees unless narrowed',
  })
  scanStats(
    @Ctx() { request, services }: ScanStatsContext,
    @Args(() => StatsWindowArgs) window: StatsWindowArgs,
    @Args(() => ScanStatsFilterArgs) filter: ScanStatsFilterArgs,
  ): Promise<ScanStats> {
    return services.scanStats.stats(request, { ...filter, ...window });
  }

  @FieldResolver(() => [CodeCount], { description: 'codes with the most scans in [from, to), largest first; orphan scans excluded' })
  topCodes(
    @Root() stats: ScanStats,
    @Arg('first', () => Int, { nullable: true, defaultValue: DEFAULT_TOP_CODES }) first: number | null,
  ): Promise<CodeCount[]> {
    return stats.topCodesOf(first ?? DEFAULT_TOP_CODES);
  }
}

@Resolver(() => Code)
export class CodeStatsResolver {
  @FieldResolver(() => ScanStats, { description: "this code's scans and visits in [from, to)" })
  stats(
    @Root() code: Code,
    @Args(() => StatsWindowArgs) window: StatsWindowArgs,
    @Ctx() { request, services }: ScanStatsContext,
  ): Promise<ScanStats> {
    return services.scanStats.stats(request, { ...window, codeId: code.id });
  }
}
