import { Column, Entity, PrimaryColumn } from 'typeorm';
import { Role } from '../access';
import { epochMillis } from '../db/transformers';

/** A stored API key: the secret itself is never stored, only its SHA-256. */
@Entity({ name: 'api_key' })
export class ApiKeyRow {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ type: 'varchar', length: 100 })
  name!: string;

  @Column({ type: 'varchar', length: 8 })
  role!: Role;

  /** JSON array of page ids; null: every page */
  @Column({ name: 'page_ids', type: 'text', nullable: true })
  pageIds!: string | null;

  @Column({ type: 'varchar', length: 16 })
  prefix!: string;

  /** hex SHA-256 of the key (key-format.ts hashKey) */
  @Column({ name: 'secret_hash', type: 'varchar', length: 64 })
  secretHash!: string;

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMillis })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'bigint', nullable: true, transformer: epochMillis })
  lastUsedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'bigint', nullable: true, transformer: epochMillis })
  revokedAt!: Date | null;
}
