import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { ApiKeyRow } from '../auth/api-key.entity';
import { DEFAULT_SQLITE_BUSY_TIMEOUT_MS, type DatabaseConfig } from '../config';
import { Code } from '../codes/code.entity';
import { Database } from '../db/database';
import { CodesAndImages1764050000000 } from '../db/migrations/1764050000000-CodesAndImages';
import { Scans1764060000000 } from '../db/migrations/1764060000000-Scans';
import { LongRefs1764070000000 } from '../db/migrations/1764070000000-LongRefs';
import { Pages1764080000000 } from '../db/migrations/1764080000000-Pages';
import { ApiKeys1764090000000 } from '../db/migrations/1764090000000-ApiKeys';
import { OrphanRefs1764100000000 } from '../db/migrations/1764100000000-OrphanRefs';
import { Tracking1764110000000 } from '../db/migrations/1764110000000-Tracking';
import { PrintSheets1764120000000 } from '../db/migrations/1764120000000-PrintSheets';
import { CodeStyles1764200000000 } from '../db/migrations/1764200000000-CodeStyles';
import { RelayOutbox1764300000000 } from '../db/migrations/1764300000000-RelayOutbox';
import { IngestTail1764600000000 } from '../db/migrations/1764600000000-IngestTail';
import { StreamOrder1764500000000 } from '../db/migrations/1764500000000-StreamOrder';
import { StreamByRef1764640000000 } from '../db/migrations/1764640000000-StreamByRef';
import { DropIngestTail1764670000000 } from '../db/migrations/1764670000000-DropIngestTail';
import { IngestOneTrip1764660000000 } from '../db/migrations/1764660000000-IngestOneTrip';
import { scanRollupsMigration } from '../db/migrations/1764400000000-ScanRollups';
import { RollupPending1764620000000 } from '../db/migrations/1764620000000-RollupPending';
import { RollupRefCounts1764630000000 } from '../db/migrations/1764630000000-RollupRefCounts';
import { CodeImageRow } from '../images/code-image.entity';
import { PageRow } from '../pages/page.entity';
import { Scan } from '../scans/scan.entity';
import { backfillRollupsInMigration } from '../stats/scan-rollups';

export const ENTITIES = [Code, CodeImageRow, Scan, PageRow, ApiKeyRow];
export const MIGRATIONS = [
  CodesAndImages1764050000000,
  Scans1764060000000,
  LongRefs1764070000000,
  Pages1764080000000,
  ApiKeys1764090000000,
  OrphanRefs1764100000000,
  Tracking1764110000000,
  PrintSheets1764120000000,
  CodeStyles1764200000000,
  RelayOutbox1764300000000,
  scanRollupsMigration(backfillRollupsInMigration),
  StreamOrder1764500000000,
  IngestTail1764600000000,
  RollupPending1764620000000,
  RollupRefCounts1764630000000,
  StreamByRef1764640000000,
  IngestOneTrip1764660000000,
  DropIngestTail1764670000000,
];

/**
 * The one DataSource factory: used by the gateway, the tests and the TypeORM CLI (ormconfig.ts).
 * `migrate`: for running migrations, without the PostgreSQL query timeout (an index built
 * over millions of scans takes longer than any request should wait).
 */
export function createDataSource(database: DatabaseConfig, purpose: 'serve' | 'migrate' = 'serve'): DataSource {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    logging: false,
  } as const;
  if (database.kind === 'postgres') {
    return new DataSource({
      ...common,
      type: 'postgres',
      url: database.url,
      ...(database.schema ? { schema: database.schema } : {}),
      extra: {
        max: 20,
        // A database that stops answering (a network partition, a frozen server) fails requests
        // after these limits, answered 5xx (Meta redelivers), instead of holding them forever.
        ...(database.connectTimeoutMs ? { connectionTimeoutMillis: database.connectTimeoutMs } : {}),
        ...(purpose === 'serve' && database.queryTimeoutMs ? { query_timeout: database.queryTimeoutMs } : {}),
        keepAlive: true,
        // Unqualified names in migrations and queries resolve to the configured schema.
        ...(database.schema ? { options: `-c search_path=${database.schema}` } : {}),
      },
    });
  }
  if (database.path !== ':memory:') mkdirSync(dirname(resolve(database.path)), { recursive: true });
  return new DataSource({
    ...common,
    type: 'better-sqlite3',
    database: database.path,
    // WAL lets readers run beside the writer; synchronous=FULL fsyncs the WAL at every
    // commit, so an acknowledged write survives a power loss, not only a process crash.
    enableWAL: true,
    prepareDatabase: (db: { pragma(source: string): unknown }) => {
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // Waited out on a timer by the scan writer (src/scans/scan.store.ts, beginImmediate).
      db.pragma(`busy_timeout = ${database.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS}`);
    },
  });
}

/**
 * Opens the gateway's database: migrations first (on PostgreSQL through a connection of their
 * own, without the query timeout), then the connection that serves.
 */
export function openDatabase(database: DatabaseConfig): Promise<Database> {
  if (database.kind !== 'postgres') return Database.open(createDataSource(database));
  return Database.open(createDataSource(database), createDataSource(database, 'migrate'));
}
