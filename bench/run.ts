/**
 * `npm run bench [-- --quick]`: measures the gateway, running as a production process,
 * beside the floor of each figure, all in one run; prints a table and writes
 * bench/results.json. Exits 0 whether or not targets are met, 1 only when something broke
 * (a request failed, a process died, a row could not run).
 *
 * Processes: this orchestrator (seeds databases, runs the SQLite floor, reads RSS and CPU
 * from /proc), one gateway per row (`node dist/src/main.js`), and the load generator
 * (load.ts, forked), which forks the bare `ws` server of the delivery floor.
 *
 * Options: --quick (every row small, one round each: a few minutes), --only 1,4 (some rows),
 * --profile <dir> (each gateway writes a V8 .cpuprofile into <dir>/<row>/ when it stops).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { killAll } from './children';
import { exportAtScale } from './export-row';
import { deliveryWithKeys, listingWithKeys } from './keys-rows';
import { pgBatchedWebhooks, pgDeliveryAcrossInstances, pgSingleScanWebhooks } from './pg-rows';
import { printSheets } from './print-row';
import { redirects } from './redirect-row';
import { ingestWithRollups, statsAtScale, uniquePeopleAtScale } from './stats-rows';
import { resumeAfterOutage } from './resume-row';
import { styledCodes } from './style-row';
import { LoadProcess } from './load-client';
import { formatTable, machine, writeResults, type Results, type RowResult } from './report';
import {
  FULL,
  QUICK,
  batchedWebhooks,
  deliveryLatency,
  generateCodes,
  healthUnderAttack,
  listingAtScale,
  memoryPerSubscriber,
  singleScanWebhooks,
  type BenchContext,
} from './rows';

const ROWS: { row: number; what: string; run: (context: BenchContext) => Promise<RowResult> }[] = [
  { row: 1, what: 'single-scan webhooks', run: singleScanWebhooks },
  { row: 2, what: 'batched webhooks', run: batchedWebhooks },
  { row: 3, what: 'delivery latency', run: deliveryLatency },
  { row: 4, what: 'listing at scale', run: listingAtScale },
  { row: 5, what: 'generateCode', run: generateCodes },
  { row: 6, what: 'memory per subscriber', run: memoryPerSubscriber },
  { row: 7, what: '/healthz under attack', run: healthUnderAttack },
  { row: 8, what: 'codes listing with and without API keys', run: listingWithKeys },
  { row: 9, what: 'delivery with and without API keys', run: deliveryWithKeys },
  { row: 10, what: 'CSV export at scale', run: exportAtScale },
  { row: 11, what: 'print sheet of 500 codes', run: printSheets },
  { row: 12, what: 'REDIRECT links', run: redirects },
  { row: 13, what: 'generateCode with a center image at 1000 px', run: styledCodes },
  { row: 14, what: 'scanStats DAY over 30 days Europe/Berlin at 10,000,000 scans', run: statsAtScale },
  { row: 15, what: 'batched ingest with rollups maintained', run: ingestWithRollups },
  { row: 16, what: 'unique people at 1,000,000 people', run: uniquePeopleAtScale },
  { row: 17, what: 'subscribers resuming after an outage', run: resumeAfterOutage },
  { row: 18, what: 'PostgreSQL: batched webhooks on two gateways', run: pgBatchedWebhooks },
  { row: 19, what: 'PostgreSQL: single-scan webhooks on two gateways', run: pgSingleScanWebhooks },
  { row: 20, what: 'PostgreSQL: delivery across instances', run: pgDeliveryAcrossInstances },
];

const RESULTS_PATH = join(__dirname, '..', '..', 'bench', 'results.json');

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      /** comma-separated row numbers to run, e.g. --only 1,4 */
      only: { type: 'string' },
      /** a directory where each gateway writes a V8 CPU profile (open in Chrome DevTools) */
      profile: { type: 'string' },
    },
  });
  const quick = values.quick ?? false;
  const only = values.only?.split(',').map(Number);
  const started = Date.now();
  const log = (message: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);

  const workDir = mkdtempSync(join(tmpdir(), 'messenger-bench-'));
  // However the run ends (Ctrl-C included), the databases (several GB for row 4) go with it.
  process.on('exit', () => rmSync(workDir, { recursive: true, force: true }));
  const load = LoadProcess.start();
  const context: BenchContext = {
    scale: quick ? QUICK : FULL,
    load,
    workDir,
    appSecret: `bench-secret-${process.pid}`,
    pageId: '100000000000001',
    log,
    ...(values.profile ? { profileDirectory: resolve(values.profile) } : {}),
  };
  log(`${quick ? 'quick' : 'full'} run; work directory ${workDir}`);

  const rows: RowResult[] = [];
  try {
    for (const { row, what, run } of ROWS) {
      if (only && !only.includes(row)) continue;
      log(`row ${row}: ${what}`);
      try {
        rows.push(await run(context));
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`row ${row} failed: ${message}`);
        rows.push({ row, what, measured: '', floor: '—', target: '—', met: null, data: {}, error: message });
      }
    }
  } finally {
    load.stop();
    rmSync(workDir, { recursive: true, force: true });
  }

  const results: Results = {
    ...machine(),
    date: new Date().toISOString(),
    quick,
    durationSeconds: Math.round((Date.now() - started) / 1000),
    rows,
  };
  writeResults(RESULTS_PATH, results);
  process.stdout.write(
    `\nMessenger Code gateway benchmark${quick ? ' (--quick: small scale)' : ''}: ${results.cores} cores (${results.cpuModel}), Node ${results.node}, ` +
      `commit ${results.commit.slice(0, 12)}${results.dirty ? ' + uncommitted changes' : ''}, ${results.durationSeconds} s\n\n`,
  );
  process.stdout.write(`${formatTable(rows)}\n\nwritten to ${RESULTS_PATH}\n`);
  const broken = rows.filter((row) => row.error !== undefined);
  if (broken.length > 0) {
    process.stderr.write(`\n${broken.length} row(s) broke: ${broken.map((row) => row.row).join(', ')}\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    killAll();
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
