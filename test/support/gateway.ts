import { randomBytes } from 'node:crypto';
import { startGateway, type Gateway } from '../../src/app/gateway';
import { loadConfig } from '../../src/config';
import { createLogger, type LogLevel } from '../../src/logging/logger';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases';
import { TEST_APP_SECRET } from './webhook';

export const TEST_PAGE_ID = '1234567890';
export const TEST_VERIFY_TOKEN = 'test-verify-token';
/**
 * The REDIS_PREFIX of this test file's gateways: Jest runs files side by side on one Redis,
 * and a file's gateways must not take another file's scans or rate budgets for theirs.
 */
export const TEST_REDIS_PREFIX = `gateway-test-${process.pid}-${randomBytes(4).toString('hex')}:`;

/** The JSON lines a test gateway logged; errors are also echoed to stderr, so a failure's cause shows. */
export class LogCapture {
  readonly lines: string[] = [];

  write(line: string): void {
    this.lines.push(line);
    if (/"level":"(error|fatal)"/.test(line)) process.stderr.write(line);
  }

  get text(): string {
    return this.lines.join('');
  }

  entries(): { level: string; message: string; [field: string]: unknown }[] {
    return this.lines.map((line) => JSON.parse(line) as { level: string; message: string });
  }
}

export interface TestGateway extends Gateway {
  database: TestDatabase;
  logs: LogCapture;
}

/**
 * What tests started and must release, newest first: drained after the test file
 * (graphql-ws's "leftovers"), so no test writes its own teardown.
 */
const leftovers: (() => Promise<void>)[] = [];
afterAll(async () => {
  while (leftovers.length > 0) await (leftovers.pop() as () => Promise<void>)();
});

/**
 * A real gateway on 127.0.0.1:0, configured through the same environment parsing as
 * production, on a fresh database of `kind` (or on a given database, shared with
 * another gateway). `env` adds or overrides variables; LOG_LEVEL defaults to error.
 * It is stopped, and a database it created removed, after the test file.
 */
export async function startTestGateway(database: DatabaseKind | TestDatabase, env: Record<string, string> = {}): Promise<TestGateway> {
  const owned = typeof database === 'string';
  const testDatabase = owned ? await createTestDatabase(database) : database;
  if (owned) leftovers.push(() => testDatabase.dispose());
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: testDatabase.url,
    PAGE_ID: TEST_PAGE_ID,
    APP_SECRET: TEST_APP_SECRET,
    WEBHOOK_VERIFY_TOKEN: TEST_VERIFY_TOKEN,
    LOG_LEVEL: 'error',
    REDIS_PREFIX: TEST_REDIS_PREFIX,
    ...env,
  });
  const logs = new LogCapture();
  const gateway = await startGateway(config, { logger: createLogger({ level: config.logLevel as LogLevel, destination: logs }) });
  leftovers.push(() => gateway.stop());
  return Object.assign(gateway, { database: testDatabase, logs });
}

export async function countRows(gateway: Gateway, table: 'code' | 'code_image' | 'ref_counter' | 'scan'): Promise<number> {
  const rows: { n: number | string }[] = await gateway.db.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0].n);
}
