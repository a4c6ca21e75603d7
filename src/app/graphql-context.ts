import type { CodesContext } from '../codes/code.resolver';
import type { RequestContext } from '../context';
import type { PagesContext } from '../pages/page.resolver';
import { createScanLoaders, type ScansContext } from '../scans/scan.resolver';
import type { Services } from './services';

/** What every resolver receives: each capability's resolvers declare the part they read. */
export type GraphQLContext = CodesContext & ScansContext & PagesContext & { services: Services };

export function createGraphQLContext(
  services: Services,
  request: RequestContext,
  dropConnection?: (reason: string) => void,
): GraphQLContext {
  return {
    request,
    services,
    loaders: createScanLoaders(services.codes),
    ...(dropConnection ? { dropConnection } : {}),
  };
}
