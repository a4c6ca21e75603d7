import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../context';
import type { Connection } from '../pagination/connection.types';
import { PageArgs } from '../pagination/page.args';
import type { ApiKeyService } from './api-key.service';
import { ApiKey, ApiKeyConnection, CreateApiKeyInput, CreatedApiKey, Viewer } from './api-key.types';

/** What the key resolvers need of the GraphQL context. */
export interface ApiKeysContext {
  request: RequestContext;
  services: { apiKeys: ApiKeyService };
}

@Resolver()
export class ApiKeyResolver {
  @Query(() => Viewer, { description: 'who the presented key is' })
  async viewer(@Ctx() { request, services }: ApiKeysContext): Promise<Viewer> {
    const { access } = request;
    const apiKeyId = access.apiKeyId;
    return {
      role: access.role,
      pageIds: access.pageIds === null ? null : [...access.pageIds],
      apiKey: apiKeyId === undefined ? null : await services.apiKeys.findById(request, apiKeyId),
    };
  }

  @Query(() => ApiKeyConnection, { description: 'every API key, revoked ones included, oldest first' })
  async apiKeys(@Args(() => PageArgs) page: PageArgs, @Ctx() { request, services }: ApiKeysContext): Promise<Connection<ApiKey>> {
    return ApiKeyConnection.of(await services.apiKeys.list(request, page));
  }

  @Mutation(() => CreatedApiKey)
  createApiKey(
    @Arg('input', () => CreateApiKeyInput) input: CreateApiKeyInput,
    @Ctx() { request, services }: ApiKeysContext,
  ): Promise<CreatedApiKey> {
    return services.apiKeys.create(request, input);
  }

  @Mutation(() => ApiKey, { description: 'revokes at once: HTTP requests are refused, open WebSockets closed (4403) within 5 s' })
  revokeApiKey(@Arg('id', () => ID) id: string, @Ctx() { request, services }: ApiKeysContext): Promise<ApiKey> {
    return services.apiKeys.revoke(request, id);
  }
}
