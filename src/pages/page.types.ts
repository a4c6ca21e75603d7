import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { connectionType } from '../pagination/connection.types';

@ObjectType({ description: 'A Facebook page the gateway generates codes for.' })
export class Page {
  @Field(() => ID, { description: 'the Facebook page id' })
  id!: string;

  @Field(() => String, { nullable: true })
  name!: string | null;

  @Field(() => Boolean, { description: 'whether an access token is stored; the token itself is never returned or logged' })
  hasAccessToken!: boolean;

  @Field(() => String, {
    nullable: true,
    description: "where this page's webhook events are relayed (see Bot relay); null: RELAY_URL or none",
  })
  relayUrl!: string | null;

  @Field(() => Date)
  createdAt!: Date;
}

export const PageConnection = connectionType(Page, 'Page');

@InputType()
export class RegisterPageInput {
  @Field(() => ID, { description: 'the numeric Facebook page id' })
  id!: string;

  @Field(() => String, { nullable: true, description: 'at most 200 characters' })
  name?: string | null;

  @Field(() => String, { nullable: true, description: 'stored encrypted under ENCRYPTION_KEY; never returned' })
  accessToken?: string | null;

  @Field(() => String, { nullable: true, description: 'an absolute http(s) URL' })
  relayUrl?: string | null;
}

/** Each optional field: left out (undefined) keeps the stored value, null clears it. */
@InputType({ description: 'In updatePage, a field left out keeps its value and null clears it.' })
export class UpdatePageInput {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => String, { nullable: true })
  accessToken?: string | null;

  @Field(() => String, { nullable: true })
  relayUrl?: string | null;
}
