import { Arg, Args, Ctx, FieldResolver, Resolver, Root } from 'type-graphql';
import type { Connection } from '../pagination/connection.types';
import { PageArgs } from '../pagination/page.args';
import { Page } from '../pages/page.types';
import type { Code } from './code.entity';
import type { CodesContext } from './code.resolver';
import { CodeOrderBy } from './code.service';
import { CodeConnection } from './code.types';

/** Page.codes lives here, beside the codes, because codes depend on pages and not the reverse. */
@Resolver(() => Page)
export class PageCodesResolver {
  // Parameters in reverse (see CodeResolver.codes): the schema reads codes(first, after, orderBy).
  @FieldResolver(() => CodeConnection, { description: "this page's codes" })
  async codes(
    @Root() page: Page,
    @Ctx() { request, services }: CodesContext,
    @Arg('orderBy', () => CodeOrderBy, { nullable: true, defaultValue: CodeOrderBy.CREATED_AT_DESC }) orderBy: CodeOrderBy | null,
    @Args(() => PageArgs) args: PageArgs,
  ): Promise<Connection<Code>> {
    return CodeConnection.of(await services.codes.list(request, { pageId: page.id, ...args, orderBy }));
  }
}
