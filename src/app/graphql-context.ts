import type { ApiKeysContext } from '../auth/api-key.resolver';
import type { CodesContext } from '../codes/code.resolver';
import type { RequestContext } from '../context';
import type { Logger } from '../logging/logger';
import type { PagesContext } from '../pages/page.resolver';
import type { PrintContext } from '../print/print-sheet.resolver';
import type { RelayContext } from '../relay/relay.resolver';
import { createScanLoaders, type ScansContext } from '../scans/scan.resolver';
import type { StatsContext } from '../stats/orphan-refs';
import type { ScanStatsContext } from '../stats/scan-stats.resolver';
import type { Services } from './services';

/** What every resolver receives: each capability's resolvers declare the part they read. */
export type GraphQLContext = CodesContext &
  ScansContext &
  PagesContext &
  ApiKeysContext &
  StatsContext &
  ScanStatsContext &
  PrintContext &
  RelayContext & { services: Services; logger: Logger };

export function createGraphQLContext(
  services: Services,
  request: RequestContext,
  logger: Logger,
  dropConnection?: (reason: string) => void,
): GraphQLContext {
  return {
    request,
    services,
    logger,
    loaders: createScanLoaders(services.codes, request.access.scope),
    ...(dropConnection ? { dropConnection } : {}),
  };
}
