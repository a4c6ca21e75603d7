import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { RequestContext } from '../context';
import type { Connection } from '../pagination/connection.types';
import { PageArgs } from '../pagination/page.args';
import { Code } from './code.entity';
import type { CodeService } from './code.service';
import { CodeOrderBy } from './code.service';
import { CodeConnection, CodeFilterArgs, GenerateCodeInput, GenerateCodesInput } from './code.types';

/** What the code resolvers need of the GraphQL context. */
export interface CodesContext {
  request: RequestContext;
  services: { codes: CodeService };
}

@Resolver(() => Code)
export class CodeResolver {
  @Mutation(() => Code, { description: 'Returns the code of (page, ref), creating it or storing an image of a new size.' })
  generateCode(@Arg('input', () => GenerateCodeInput) input: GenerateCodeInput, @Ctx() { request, services }: CodesContext): Promise<Code> {
    return services.codes.generate(request, {
      pageId: input.pageId,
      type: input.type,
      imageSize: input.imageSize,
      ref: input.data?.ref,
      label: input.label,
      tracking: input.tracking,
      style: input.style,
    });
  }

  @Mutation(() => [Code], {
    description: 'codes for 1 to 500 refs (or a series) of one page, all or nothing, in the order of the refs',
  })
  generateCodes(
    @Arg('input', () => GenerateCodesInput) input: GenerateCodesInput,
    @Ctx() { request, services }: CodesContext,
  ): Promise<Code[]> {
    return services.codes.generateMany(request, input);
  }

  // type-graphql lists the arguments of several parameters last parameter first: the
  // schema reads codes(pageId, ref, first, after, orderBy), as the contract has it.
  @Query(() => CodeConnection)
  async codes(
    @Ctx() { request, services }: CodesContext,
    @Arg('orderBy', () => CodeOrderBy, { nullable: true, defaultValue: CodeOrderBy.CREATED_AT_DESC }) orderBy: CodeOrderBy | null,
    @Args(() => PageArgs) page: PageArgs,
    @Args(() => CodeFilterArgs) filter: CodeFilterArgs,
  ): Promise<Connection<Code>> {
    return CodeConnection.of(await services.codes.list(request, { ...filter, ...page, orderBy }));
  }

  @Query(() => Code, { nullable: true })
  code(@Arg('id', () => ID) id: string, @Ctx() { request, services }: CodesContext): Promise<Code | null> {
    return services.codes.findById(request, id);
  }

  @FieldResolver(() => String, {
    description: "what the code encodes: the m.me link (DIRECT) or the gateway's redirect link (REDIRECT)",
  })
  link(@Root() code: Code, @Ctx() { services }: CodesContext): string {
    return services.codes.linkOf(code);
  }

  @FieldResolver(() => String, { description: 'permanent URL of the stored image, served by the gateway' })
  imageUrl(@Root() code: Code, @Ctx() { services }: CodesContext): string {
    return services.codes.imageUrl(code);
  }

  @FieldResolver(() => String, { nullable: true, description: 'the same code as SVG; null for FACEBOOK codes' })
  svgUrl(@Root() code: Code, @Ctx() { services }: CodesContext): Promise<string | null> {
    return services.codes.svgUrl(code);
  }
}
