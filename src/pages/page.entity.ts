import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMillis } from '../db/transformers';

/**
 * A registered page as stored. The token columns never leave the pages service: the
 * GraphQL type (page.types.ts) is built from this row and says only whether a token exists.
 */
@Entity({ name: 'page' })
export class PageRow {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  id!: string;

  @Column({ type: 'varchar', length: 200, nullable: true })
  name!: string | null;

  @Column({ name: 'relay_url', type: 'varchar', length: 2048, nullable: true })
  relayUrl!: string | null;

  /** base64 of IV ‖ GCM tag ‖ ciphertext; null when the page has no stored token */
  @Column({ name: 'token_ciphertext', type: 'text', nullable: true })
  tokenCiphertext!: string | null;

  /** keyIdOf(the key it is encrypted under); see token-cipher.ts */
  @Column({ name: 'token_key_id', type: 'varchar', length: 16, nullable: true })
  tokenKeyId!: string | null;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMillis })
  createdAt!: Date;
}
