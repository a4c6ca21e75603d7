import { ArgsType, Field, ID } from 'type-graphql';
import { connectionType } from '../pagination/connection.types';
import { Scan } from './scan.entity';

export const ScanConnection = connectionType(Scan, 'Scan');

/** The filters of `scans`; paging arguments are PageArgs. */
@ArgsType()
export class ScanFilterArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => ID, { nullable: true })
  codeId?: string | null;
}

@ArgsType()
export class ScannedArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => ID, { nullable: true })
  codeId?: string | null;

  @Field(() => String, { nullable: true })
  ref?: string | null;

  @Field(() => String, {
    nullable: true,
    description: 'a Scan.streamCursor: first every matching scan stored after it, in storage order, then the live ones',
  })
  after?: string | null;
}
