import { Ctx, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../context';
import type { RelayService } from './relay.service';
import { RelayTarget } from './relay.types';

/** What the relay resolver needs of the GraphQL context. */
export interface RelayContext {
  request: RequestContext;
  services: { relay: RelayService };
}

@Resolver()
export class RelayResolver {
  @Query(() => [RelayTarget], { description: 'ADMIN only: every bot URL the relay knows, by URL' })
  relayTargets(@Ctx() { request, services }: RelayContext): Promise<RelayTarget[]> {
    return services.relay.targets(request);
  }
}
