import { Column, Entity, PrimaryColumn } from 'typeorm';
import { epochMillis } from '../db/transformers';
import { CodeProviderKind, type CodeImageContentType } from './image.types';

/** An image of a code at one size. Never updated nor deleted: its URL is permanent. */
@Entity({ name: 'code_image' })
export class CodeImageRow {
  @PrimaryColumn({ type: 'varchar', length: 36 })
  id!: string;

  @Column({ name: 'code_id', type: 'varchar', length: 36 })
  codeId!: string;

  @Column({ type: 'integer' })
  size!: number;

  @Column({ name: 'content_type', type: 'varchar', length: 32 })
  contentType!: CodeImageContentType;

  @Column({ type: 'varchar', length: 16 })
  provider!: CodeProviderKind;

  /** sha256 of the bytes, hex: the strong ETag. */
  @Column({ type: 'varchar', length: 64 })
  sha256!: string;

  @Column({ name: 'byte_length', type: 'integer' })
  byteLength!: number;

  // The bytes themselves (blob on SQLite, bytea on PostgreSQL) are not mapped here:
  // TypeORM has no binary type valid on both, and only ImageStore reads or writes them.

  @Column({ name: 'created_at', type: 'bigint', transformer: epochMillis })
  createdAt!: Date;
}
