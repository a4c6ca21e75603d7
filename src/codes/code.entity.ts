import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMillis, epochMillisOrNever, nullableRef } from '../db/transformers';
import { CodeProviderKind } from '../images/image.types';

export enum CodeType {
  STANDARD = 'STANDARD',
}

/** What a code encodes: the m.me link itself, or the gateway's redirect link that counts each visit first. */
export enum CodeTracking {
  DIRECT = 'DIRECT',
  REDIRECT = 'REDIRECT',
}

registerEnumType(CodeType, { name: 'CodeType' });
registerEnumType(CodeTracking, {
  name: 'CodeTracking',
  description:
    'DIRECT: the code encodes the m.me link. REDIRECT: it encodes <PUBLIC_URL>/s/<slug>, which counts a visit and redirects to the m.me link.',
});
registerEnumType(CodeProviderKind, { name: 'CodeProvider' });

@ObjectType({ description: 'A Messenger Code of a page: its current image and the scans of its (page, ref).' })
@Entity({ name: 'code' })
export class Code {
  @Field(() => ID)
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Field(() => ID)
  @Column({ name: 'page_id', type: 'varchar', length: 64 })
  pageId!: string;

  @Field(() => CodeType)
  @Column({ type: 'varchar', length: 16 })
  type!: CodeType;

  @Field(() => String, { nullable: true, description: "null for the page's static code" })
  @Column({ type: 'varchar', length: 250, transformer: nullableRef })
  ref!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 200, nullable: true })
  label!: string | null;

  @Field(() => CodeProviderKind, { description: 'which provider produced the current image' })
  @Column({ type: 'varchar', length: 16 })
  provider!: CodeProviderKind;

  @Field(() => Int, { description: 'size in pixels of the stored image' })
  @Column({ name: 'image_size', type: 'integer' })
  imageSize!: number;

  /** The image that imageUrl points at; earlier images stay served. */
  @Column({ name: 'image_id', type: 'varchar', length: 36 })
  imageId!: string;

  @Field(() => Date)
  @Column({ name: 'created_at', type: 'bigint', transformer: epochMillis })
  createdAt!: Date;

  /**
   * Copied from the (page, ref) counter in the same transaction as each scan,
   * so that listing and ordering by counts reads one row per code.
   */
  @Field(() => Int)
  @Column({ name: 'scan_count', type: 'integer', default: 0 })
  scanCount!: number;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'last_scanned_at', type: 'bigint', transformer: epochMillisOrNever })
  lastScannedAt!: Date | null;

  @Field(() => CodeTracking)
  @Column({ type: 'varchar', length: 16, default: CodeTracking.DIRECT })
  tracking!: CodeTracking;

  /** The last segment of a REDIRECT code's link; null for DIRECT codes. Never changes. */
  @Column({ type: 'varchar', length: 32, nullable: true })
  slug!: string | null;

  @Field(() => Int, { description: 'GETs of the redirect link; 0 for DIRECT codes' })
  @Column({ name: 'visit_count', type: 'integer', default: 0 })
  visitCount!: number;
}
