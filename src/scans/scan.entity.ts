import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintNumber, epochMillis, nullableRef } from '../db/transformers';
import type { Code } from '../codes/code.entity';
import { ScanKind } from './scan-kind';

export { ScanKind } from './scan-kind';

registerEnumType(ScanKind, {
  name: 'ScanKind',
  description: 'How the person reached the bot: POSTBACK = first time (Get Started), REFERRAL = re-entered an existing thread.',
});

@ObjectType({ description: 'One scan of a code (or of an m.me link with a ref), as the webhook reported it.' })
@Entity({ name: 'scan' })
export class Scan {
  /** Derived from the event (see scanIdOf): the same event always has the same id. */
  @Field(() => ID)
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Field(() => ID)
  @Column({ name: 'page_id', type: 'varchar', length: 64 })
  pageId!: string;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 2083, transformer: nullableRef })
  ref!: string | null;

  @Field(() => ScanKind)
  @Column({ type: 'varchar', length: 16 })
  kind!: ScanKind;

  @Field(() => String, {
    nullable: true,
    description: 'referral source exactly as Messenger sent it (MESSENGER_CODE, SHORTLINK, ADS, ...); null when absent',
  })
  @Column({ type: 'varchar', length: 64, nullable: true })
  source!: string | null;

  /** Keyed hash of the sender's PSID: the PSID itself is never stored. Not exposed. */
  @Column({ name: 'sender_hash', type: 'varchar', length: 64 })
  senderHash!: string;

  @Field(() => Date, { description: "Messenger's event timestamp" })
  @Column({ name: 'occurred_at', type: 'bigint', transformer: epochMillis })
  occurredAt!: Date;

  @Field(() => Date)
  @Column({ name: 'received_at', type: 'bigint', transformer: epochMillis })
  receivedAt!: Date;

  /** Position in the order scans were stored, across instances (see the StreamOrder migration); exposed as `streamCursor`. */
  @Column({ name: 'stream_seq', type: 'bigint', transformer: bigintNumber })
  streamSeq!: number;

  /**
   * Set on scans that are being published: the code as it was right after this scan
   * was counted (null for an orphan scan). Read scans leave it undefined and the code
   * is looked up.
   */
  codeAfterScan?: Code | null;
}
