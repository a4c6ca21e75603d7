import { Field, ID, InputType, ObjectType, registerEnumType } from 'type-graphql';
import { Role } from '../access';
import { connectionType } from '../pagination/connection.types';

registerEnumType(Role, {
  name: 'Role',
  description:
    'ADMIN: everything (pages, keys, relay), never scoped. EDITOR: read, subscribe and generate on its pages. VIEWER: read and subscribe on its pages.',
});

@ObjectType({ description: 'An API key as stored: its secret is shown only once, by createApiKey.' })
export class ApiKey {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Role)
  role!: Role;

  @Field(() => [ID], { nullable: true, description: 'the pages this key may see; null: every page' })
  pageIds!: string[] | null;

  @Field(() => String, { description: "the key's first characters, to recognise it in lists" })
  prefix!: string;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: 'to the minute' })
  lastUsedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  revokedAt!: Date | null;
}

export const ApiKeyConnection = connectionType(ApiKey, 'ApiKey');

@ObjectType()
export class CreatedApiKey {
  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field(() => String, { description: 'the secret; shown only in this response, stored only as a hash' })
  key!: string;
}

@InputType()
export class CreateApiKeyInput {
  @Field(() => String, { description: '1 to 100 characters, e.g. "dashboard in the lobby"' })
  name!: string;

  @Field(() => Role)
  role!: Role;

  @Field(() => [ID], { nullable: true, description: 'registered pages; leave out for every page (always for ADMIN)' })
  pageIds?: string[] | null;
}

@ObjectType({ description: 'Who the presented key is. apiKey is null for ADMIN_API_KEY and for an open gateway.' })
export class Viewer {
  @Field(() => Role)
  role!: Role;

  @Field(() => [ID], { nullable: true })
  pageIds!: string[] | null;

  @Field(() => ApiKey, { nullable: true })
  apiKey!: ApiKey | null;
}
