import { createHash } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import type { PageScope } from '../access';
import type { Database } from '../db/database';
import { CodeImageRow } from './code-image.entity';
import type { CodeImage, CodeProviderKind } from './image.types';

/** Codes per query of vectorIdsOf: SQLite allows 999 parameters per statement. */
const VECTOR_CHUNK = 500;

export interface StoredImage {
  bytes: Buffer;
  contentType: string;
  sha256: string;
}

/**
 * Code images live in the database beside their code rows, so that a code and its
 * image are committed (or rolled back) together and every instance serves them.
 */
export class ImageStore {
  constructor(
    private readonly db: Database,
    /** Known only once the server has bound its port when PUBLIC_URL is unset. */
    private readonly publicUrl: () => string,
  ) {}

  urlOf(imageId: string): string {
    return `${this.publicUrl()}/images/${imageId}`;
  }

  findForCode(manager: EntityManager, codeId: string, size: number): Promise<CodeImageRow | null> {
    // page-scope exempt: the image a code's write stores or reuses, in its transaction; the page was checked before.
    return manager.findOneBy(CodeImageRow, { codeId, size });
  }

  /** The ids of the SVGs of these codes, by code id (codes without one are absent). */
  async vectorIdsOf(manager: EntityManager, codeIds: readonly string[]): Promise<Map<string, string>> {
    const found = new Map<string, string>();
    const distinct = [...new Set(codeIds)];
    for (let start = 0; start < distinct.length; start += VECTOR_CHUNK) {
      const { values, bind } = this.db.parameters();
      const list = distinct
        .slice(start, start + VECTOR_CHUNK)
        .map(bind)
        .join(', ');
      // page-scope exempt: SVG ids of codes the caller already read through its scope, by their ids.
      const rows: { id: string; code_id: string }[] = await manager.query(
        `SELECT id, code_id FROM code_vector WHERE code_id IN (${list})`,
        values,
      );
      for (const row of rows) found.set(row.code_id, row.id);
    }
    return found;
  }

  async insert(
    manager: EntityManager,
    row: { id: string; codeId: string; size: number; provider: CodeProviderKind; createdAt: Date },
    image: CodeImage,
  ): Promise<void> {
    const p = (n: number) => this.db.param(n);
    await manager.query(
      `INSERT INTO code_image (id, code_id, size, content_type, provider, sha256, byte_length, bytes, created_at)
       VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)})`,
      [
        row.id,
        row.codeId,
        row.size,
        image.contentType,
        row.provider,
        createHash('sha256').update(image.bytes).digest('hex'),
        image.bytes.length,
        image.bytes,
        row.createdAt.getTime(),
      ],
    );
  }

  /** Stores a code's SVG (table code_vector: one per code, whatever its sizes). */
  async insertVector(manager: EntityManager, row: { id: string; codeId: string; createdAt: Date }, svg: Buffer): Promise<void> {
    const { values, bind } = this.db.parameters();
    const columns = [row.id, row.codeId, createHash('sha256').update(svg).digest('hex'), svg.length, svg, row.createdAt.getTime()].map(
      bind,
    );
    await manager.query(
      `INSERT INTO code_vector (id, code_id, sha256, byte_length, bytes, created_at) VALUES (${columns.join(', ')})`,
      values,
    );
  }

  /** A stored image or SVG by its id, if it is of a code in `scope` (the two share one URL space: ids are random UUIDs). */
  async read(scope: PageScope, imageId: string): Promise<StoredImage | null> {
    const { values, bind } = this.db.parameters();
    const rows = await this.db.read<{ bytes: Buffer | Uint8Array; content_type: string; sha256: string }>(
      `SELECT i.bytes, i.content_type, i.sha256 FROM ${scope.table('code_image', bind, 'i')} WHERE i.id = ${bind(imageId)}
       UNION ALL
       SELECT v.bytes, 'image/svg+xml' AS content_type, v.sha256 FROM ${scope.table('code_vector', bind, 'v')} WHERE v.id = ${bind(imageId)}`,
      values,
    );
    const row = rows[0];
    if (!row) return null;
    return { bytes: Buffer.from(row.bytes), contentType: row.content_type, sha256: row.sha256 };
  }
}
