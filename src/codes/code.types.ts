import { ArgsType, Field, Float, ID, InputType, Int, registerEnumType } from 'type-graphql';
import { connectionType } from '../pagination/connection.types';
import { Code, CodeTracking, CodeType } from './code.entity';
import { CodeOrderBy } from './code.service';
import { DEFAULT_IMAGE_SIZE } from './code.validation';
import { DEFAULT_CENTER_IMAGE_SIZE, MAX_CENTER_IMAGE_SIZE, MIN_CENTER_IMAGE_SIZE } from './code-style';

registerEnumType(CodeOrderBy, { name: 'CodeOrderBy' });

export const CodeConnection = connectionType(Code, 'Code');

@InputType()
export class CodeDataInput {
  @Field(() => String, { description: 'at most 250 of a-z A-Z 0-9 + / = - . : _' })
  ref!: string;
}

@InputType({
  description:
    "A code's style is chosen when it is created: asking for another style for an existing code is BAD_USER_INPUT; omitted, the code keeps its own.",
})
export class CodeStyleInput {
  @Field(() => String, { nullable: true, description: "a PNG or JPEG, base64, at most 1 MiB, drawn in the code's center" })
  centerImage?: string | null;

  @Field(() => Float, {
    nullable: true,
    description: `width of the center image as a fraction of the code's width (quiet zone excluded), ${MIN_CENTER_IMAGE_SIZE} to ${MAX_CENTER_IMAGE_SIZE}, default ${DEFAULT_CENTER_IMAGE_SIZE}; codes that do not scan with it are refused`,
  })
  centerImageSize?: number | null;

  @Field(() => String, { nullable: true, description: '#RRGGBB, default #000000' })
  foreground?: string | null;

  @Field(() => String, { nullable: true, description: '#RRGGBB, default #FFFFFF' })
  background?: string | null;
}

@InputType()
export class GenerateCodeInput {
  @Field(() => ID, { nullable: true, description: 'defaults to PAGE_ID' })
  pageId?: string | null;

  @Field(() => CodeType, { nullable: true, defaultValue: CodeType.STANDARD })
  type?: CodeType | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_IMAGE_SIZE, description: '100 to 2000' })
  imageSize?: number | null;

  @Field(() => CodeDataInput, {
    nullable: true,
    description: 'omit for the static code; ref: at most 250 of a-z A-Z 0-9 + / = - . : _',
  })
  data?: CodeDataInput | null;

  @Field(() => String, { nullable: true })
  label?: string | null;

  @Field(() => CodeTracking, {
    nullable: true,
    defaultValue: CodeTracking.DIRECT,
    description: 'chosen when the code is created; asking for the other one later is BAD_USER_INPUT',
  })
  tracking?: CodeTracking | null;

  @Field(() => CodeStyleInput, { nullable: true })
  style?: CodeStyleInput | null;
}

/** The filters of `codes`; paging and ordering are arguments of their own. */
@ArgsType()
export class CodeFilterArgs {
  @Field(() => ID, { nullable: true })
  pageId?: string | null;

  @Field(() => String, { nullable: true })
  ref?: string | null;
}

@InputType()
export class CodeSeriesInput {
  @Field(() => String, { description: 'refs are prefix + each number from..to' })
  prefix!: string;

  @Field(() => Int)
  from!: number;

  @Field(() => Int)
  to!: number;
}

@InputType()
export class GenerateCodesInput {
  @Field(() => ID, { nullable: true, description: 'defaults to PAGE_ID' })
  pageId?: string | null;

  @Field(() => [String], { nullable: true, description: '1 to 500 refs; or series' })
  refs?: string[] | null;

  @Field(() => CodeSeriesInput, { nullable: true })
  series?: CodeSeriesInput | null;

  @Field(() => Int, { nullable: true, defaultValue: DEFAULT_IMAGE_SIZE, description: '100 to 2000' })
  imageSize?: number | null;

  @Field(() => CodeStyleInput, { nullable: true })
  style?: CodeStyleInput | null;

  @Field(() => CodeTracking, { nullable: true, defaultValue: CodeTracking.DIRECT })
  tracking?: CodeTracking | null;
}
