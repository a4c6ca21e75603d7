import type { EntityManager } from 'typeorm';
import type { Database } from '../db/database';
import type { CodeStyle } from './code-style';
import type { SniffedContentType } from '../images/image-sniff';

interface CodeStyleRow {
  code_id: string;
  foreground: string;
  background: string;
  center_image: Buffer | Uint8Array | null;
  center_image_type: string | null;
  center_image_sha256: string | null;
  center_image_permille: number | string | null;
}

/** Codes per query of read: SQLite allows 999 parameters per statement. */
const CHUNK = 500;

/** The table code_style: the style a code was created with (no row: a plain code). */
export class CodeStyleStore {
  constructor(private readonly db: Database) {}

  /** The styles of these codes, by code id (plain codes are absent). */
  async read(manager: EntityManager, codeIds: readonly string[]): Promise<Map<string, CodeStyle>> {
    const styles = new Map<string, CodeStyle>();
    const distinct = [...new Set(codeIds)];
    for (let start = 0; start < distinct.length; start += CHUNK) {
      const { values, bind } = this.db.parameters();
      const list = distinct
        .slice(start, start + CHUNK)
        .map(bind)
        .join(', ');
      // page-scope exempt: styles of codes the caller already read through its scope, by their ids.
      const rows: CodeStyleRow[] = await manager.query(`SELECT * FROM code_style WHERE code_id IN (${list})`, values);
      for (const row of rows) styles.set(row.code_id, styleOf(row));
    }
    return styles;
  }

  async insert(manager: EntityManager, codeId: string, style: CodeStyle): Promise<void> {
    const { values, bind } = this.db.parameters();
    const image = style.centerImage;
    const columns = [
      codeId,
      style.foreground,
      style.background,
      image?.bytes ?? null,
      image?.contentType ?? null,
      image?.sha256 ?? null,
      image ? Math.round(image.size * 1000) : null,
    ].map(bind);
    await manager.query(
      `INSERT INTO code_style (code_id, foreground, background, center_image, center_image_type, center_image_sha256, center_image_permille)
       VALUES (${columns.join(', ')})`,
      values,
    );
  }
}

function styleOf(row: CodeStyleRow): CodeStyle {
  const centerImage =
    row.center_image === null
      ? null
      : {
          bytes: Buffer.from(row.center_image),
          contentType: row.center_image_type as SniffedContentType,
          sha256: row.center_image_sha256 as string,
          size: Number(row.center_image_permille) / 1000,
        };
  return { foreground: row.foreground, background: row.background, centerImage };
}
