import { Field, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A bot URL webhook requests are relayed to, and how its deliveries stand.' })
export class RelayTarget {
  @Field(() => String, { description: 'RELAY_URL or a page relayUrl' })
  url!: string;

  @Field(() => Int, { description: 'deliveries committed and not yet accepted by the bot (retries included)' })
  pending!: number;

  @Field(() => Int, { description: 'deliveries the bot accepted with a 2xx, since the relay began' })
  delivered!: number;

  @Field(() => Int, {
    description: 'deliveries given up after failing for RELAY_GIVE_UP_AFTER_MS (36 hours by default); kept in the outbox',
  })
  givenUp!: number;

  @Field(() => Date, { nullable: true, description: 'when the webhook of the oldest pending delivery was received' })
  oldestPendingAt!: Date | null;

  @Field(() => String, { nullable: true, description: 'why the latest failed attempt failed; null once a delivery succeeds' })
  lastError!: string | null;
}
