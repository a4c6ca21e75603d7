import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestGateway } from './gateway';

/** Every byte of the database, as text: the SQLite file and its WAL, or every column of every table on PostgreSQL. */
export async function databaseText(gateway: TestGateway): Promise<string> {
  if (gateway.database.kind === 'sqlite') {
    const file = gateway.database.url.slice('sqlite:'.length);
    const directory = dirname(file);
    return readdirSync(directory)
      .map((name) => readFileSync(join(directory, name)).toString('latin1'))
      .join('\n');
  }
  const tables: { table_name: string }[] = await gateway.db.dataSource.query(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const rows: unknown[] = await gateway.db.dataSource.query(`SELECT * FROM "${table_name}"`);
    parts.push(JSON.stringify(rows));
  }
  return parts.join('\n');
}
