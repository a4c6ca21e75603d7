import { loadConfig } from '../../src/config';
import { logger } from '../../src/logger';
import { startGateway, type Gateway } from '../../src/server';
import type { TestDatabase } from './databases';
import { TEST_APP_SECRET } from './webhook';

logger.setLevel('error');

export const TEST_PAGE_ID = '1234567890';
export const TEST_VERIFY_TOKEN = 'test-verify-token';

/**
 * A real gateway on 127.0.0.1:0, configured through the same environment parsing
 * as production. `env` adds or overrides variables.
 */
export function startTestGateway(database: TestDatabase, env: Record<string, string> = {}): Promise<Gateway> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: database.url,
    PAGE_ID: TEST_PAGE_ID,
    APP_SECRET: TEST_APP_SECRET,
    WEBHOOK_VERIFY_TOKEN: TEST_VERIFY_TOKEN,
    ...env,
  });
  return startGateway(config);
}

export async function countRows(gateway: Gateway, table: 'code' | 'code_image' | 'ref_counter' | 'scan'): Promise<number> {
  const rows: { n: number | string }[] = await gateway.db.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0].n);
}
