import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import type { GraphQLContext } from '../graphql/graphql-context';
import type { Connection } from '../pagination/connection.types';
import { Code } from './code.entity';
import { CodeConnection, CodesArgs, GenerateCodeInput } from './code.types';

@Resolver(() => Code)
export class CodeResolver {
  @Mutation(() => Code, { description: 'Returns the code of (page, ref), creating it or storing an image of a new size.' })
  generateCode(@Arg('input', () => GenerateCodeInput) input: GenerateCodeInput, @Ctx() { request, services }: GraphQLContext): Promise<Code> {
    return services.codes.generate(request, {
      pageId: input.pageId,
      type: input.type,
      imageSize: input.imageSize,
      ref: input.data?.ref,
      label: input.label,
    });
  }

  @Query(() => CodeConnection)
  async codes(@Args(() => CodesArgs) args: CodesArgs, @Ctx() { request, services }: GraphQLContext): Promise<Connection<Code>> {
    return CodeConnection.of(await services.codes.list(request, args));
  }

  @Query(() => Code, { nullable: true })
  code(@Arg('id', () => ID) id: string, @Ctx() { request, services }: GraphQLContext): Promise<Code | null> {
    return services.codes.findById(request, id);
  }

  @FieldResolver(() => String, { description: 'permanent URL of the stored image, served by the gateway' })
  imageUrl(@Root() code: Code, @Ctx() { services }: GraphQLContext): string {
    return services.codes.imageUrl(code);
  }
}
