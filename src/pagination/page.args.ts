import { ArgsType, Field, Int } from 'type-graphql';

/** `first` and `after` of every keyset-paginated list (see cursor.ts for their rules). */
@ArgsType()
export class PageArgs {
  @Field(() => Int, { nullable: true, defaultValue: 20 })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}
