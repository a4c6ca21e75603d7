import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import type { RequestContext } from '../context';
import type { Connection } from '../pagination/connection.types';
import { PageArgs } from '../pagination/page.args';
import type { PageService } from './page.service';
import { Page, PageConnection, RegisterPageInput, UpdatePageInput } from './page.types';

/** What the page resolvers need of the GraphQL context. */
export interface PagesContext {
  request: RequestContext;
  services: { pages: PageService };
}

@Resolver(() => Page)
export class PageResolver {
  @Query(() => PageConnection, { description: 'registered pages, in registration order' })
  async pages(@Args(() => PageArgs) page: PageArgs, @Ctx() { request, services }: PagesContext): Promise<Connection<Page>> {
    return PageConnection.of(await services.pages.list(request, page));
  }

  @Query(() => Page, { nullable: true })
  page(@Arg('id', () => ID) id: string, @Ctx() { request, services }: PagesContext): Promise<Page | null> {
    return services.pages.findById(request, id);
  }

  @Mutation(() => Page)
  registerPage(@Arg('input', () => RegisterPageInput) input: RegisterPageInput, @Ctx() { request, services }: PagesContext): Promise<Page> {
    return services.pages.register(request, input);
  }

  // Fields left out of the input stay undefined (GraphQL omits them), null ones are null:
  // the service keeps the former and clears the latter.
  @Mutation(() => Page)
  updatePage(@Arg('input', () => UpdatePageInput) input: UpdatePageInput, @Ctx() { request, services }: PagesContext): Promise<Page> {
    return services.pages.update(request, input);
  }

  @Mutation(() => ID, { description: 'deletes the page with its codes, images, scans and statistics; returns its id' })
  removePage(@Arg('id', () => ID) id: string, @Ctx() { request, services }: PagesContext): Promise<string> {
    return services.pages.remove(request, id);
  }
}
