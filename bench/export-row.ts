/**
 * Row 10: GET /export/scans.csv of every stored scan, streamed: its time, and the
 * gateway's peak memory beside the same for an export of 1 % of the scans (the floor):
 * memory flat in the number of rows means the two peaks are alike.
 */
import { performance } from 'node:perf_hooks';
import type { GatewayProcess } from './gateway-process';
import { withPeakMemory } from './peak-memory';
import { ms, num, type RowResult } from './report';
import { createSchema, SCAN_EPOCH, seedCodes, seedScans } from './seed';
import { inRowDirectory, withGateway, type BenchContext } from './rows';
import { join } from 'node:path';

interface ExportRun {
  rows: number;
  bytes: number;
  ms: number;
  /** the gateway's resident memory before, and its peak while exporting, KiB */
  rssBeforeKiB: number;
  peakRssKiB: number;
}

/** Reads the export as a client would, counting rows, while sampling the gateway's memory. */
function exportOnce(gateway: GatewayProcess, query: string): Promise<ExportRun> {
  return withPeakMemory(gateway, async () => {
    const started = performance.now();
    const response = await fetch(`${gateway.url}/export/scans.csv${query}`);
    if (!response.ok || !response.body) throw new Error(`export answered ${response.status}`);
    let bytes = 0;
    let lineBreaks = 0;
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      bytes += chunk.length;
      for (const byte of chunk) if (byte === 10) lineBreaks += 1;
    }
    return { rows: lineBreaks - 1, bytes, ms: performance.now() - started };
  });
}

export async function exportAtScale(context: BenchContext): Promise<RowResult> {
  const { scale } = context;
  return inRowDirectory(context, 'row10', async (directory) => {
    const path = join(directory, 'bench.sqlite');
    await createSchema(path);
    seedCodes(path, { pageId: context.pageId, count: scale.exportCodes });
    const seeded = seedScans(path, { pageId: context.pageId, codes: scale.exportCodes, averagePerCode: 100 });
    context.log(`row 10: seeded ${num(seeded.scans, 0)} scans in ${num(seeded.ms / 1000, 1)} s`);
    return withGateway(context, 'row10', path, async (gateway) => {
      // The floor: the first 1 % of the scans (ids, and so rows, are in time order from the seed's epoch).
      // The 1 % first, so that each starts from the same memory.
      const sampleRows = Math.max(1, Math.floor(seeded.scans / 100));
      const head = await exportOnce(gateway, `?to=${new Date(SCAN_EPOCH + sampleRows).toISOString()}`);
      const everything = await exportOnce(gateway, '');
      context.log(
        `row 10: ${num(everything.rows, 0)} rows in ${ms(everything.ms)}, peak RSS ${num(everything.peakRssKiB / 1024, 1)} MB; ` +
          `${num(head.rows, 0)} rows: peak RSS ${num(head.peakRssKiB / 1024, 1)} MB`,
      );
      if (everything.rows !== seeded.scans) throw new Error(`the export has ${everything.rows} rows, ${seeded.scans} were seeded`);
      const growth = (run: ExportRun) => (run.peakRssKiB - run.rssBeforeKiB) / 1024;
      return {
        row: 10,
        what: `GET /export/scans.csv of ${num(seeded.scans, 0)} scans, streamed`,
        measured: `${num(everything.rows, 0)} rows (${num(everything.bytes / 1024 / 1024, 1)} MB) in ${num(everything.ms / 1000, 1)} s (${num((everything.rows / everything.ms) * 1000, 0)} rows/s); peak RSS +${num(growth(everything), 1)} MB`,
        floor: `${num(head.rows, 0)} rows: peak RSS +${num(growth(head), 1)} MB`,
        target: 'memory flat: peak growth within 32 MB of the 1 % export',
        met: growth(everything) <= growth(head) + 32,
        data: { scans: seeded.scans, everything, head },
      };
    });
  });
}
