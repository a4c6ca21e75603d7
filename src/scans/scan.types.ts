import { ArgsType, Field, ID, Int } from 'type-graphql';
import { connectionType } from '../pagination/connection.types';
import { Scan } from './scan.entity';

export const ScanConnection = connectionType(Scan, 'Scan');

@ArgsType()
export class ScansArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => ID, { nullable: true })
  codeId?: string | null;

  @Field(() => Int, { nullable: true, defaultValue: 20 })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}

@ArgsType()
export class CodeScansArgs {
  @Field(() => Int, { nullable: true, defaultValue: 20 })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;
}

@ArgsType()
export class ScannedArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => ID, { nullable: true })
  codeId?: string | null;

  @Field(() => String, { nullable: true })
  ref?: string | null;
}
