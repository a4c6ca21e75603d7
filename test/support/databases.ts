import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';

export type DatabaseKind = 'sqlite' | 'postgres';

export interface TestDatabase {
  kind: DatabaseKind;
  /** A DATABASE_URL for the gateway: a fresh SQLite file or a fresh PostgreSQL schema. */
  url: string;
  dispose(): Promise<void>;
}

const postgresUrl = process.env.TEST_DATABASE_URL;

/** The databases the end-to-end suites run on: SQLite always, PostgreSQL when configured. */
export const DATABASE_KINDS: DatabaseKind[] = postgresUrl ? ['sqlite', 'postgres'] : ['sqlite'];

/** Registers a visibly skipped test where PostgreSQL is not configured, so the run says so. */
export function reportSkippedDatabases(): void {
  if (!postgresUrl) test.skip('on PostgreSQL (skipped: TEST_DATABASE_URL is not set)', () => undefined);
}

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === 'sqlite') {
    const directory = mkdtempSync(join(tmpdir(), 'gateway-test-'));
    return {
      kind,
      url: `sqlite:${join(directory, 'gateway.sqlite')}`,
      dispose: async () => rmSync(directory, { recursive: true, force: true }),
    };
  }
  if (!postgresUrl) throw new Error('TEST_DATABASE_URL is not set');
  const schema = `gw_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: postgresUrl });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  const url = new URL(postgresUrl);
  url.searchParams.set('schema', schema);
  return {
    kind,
    url: url.toString(),
    dispose: async () => {
      const client = new Client({ connectionString: postgresUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  };
}
