/**
 * Row 11: createPrintSheet of 500 codes: its time and the gateway's peak memory while it
 * renders, beside a sheet of 50 codes (memory flat in the number of codes: alike).
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { GatewayProcess } from './gateway-process';
import { withPeakMemory } from './peak-memory';
import { ms, num, type RowResult } from './report';
import { graphql, inRowDirectory, withGateway, type BenchContext } from './rows';

interface SheetRun {
  codes: number;
  pages: number;
  ms: number;
  bytes: number;
  rssBeforeKiB: number;
  peakRssKiB: number;
}

function printSheet(gateway: GatewayProcess, codeIds: string[]): Promise<SheetRun> {
  return withPeakMemory(gateway, async () => {
    const started = performance.now();
    const { createPrintSheet } = await graphql<{ createPrintSheet: { url: string; pageCount: number } }>(
      gateway,
      `
        mutation ($input: PrintSheetInput!) {
          createPrintSheet(input: $input) {
            url
            pageCount
          }
        }
      `,
      { input: { codeIds, paper: 'A4', columns: 4 } },
    );
    const elapsed = performance.now() - started;
    const pdf = await fetch(createPrintSheet.url.replace(/^https?:\/\/[^/]+/, gateway.url));
    const bytes = (await pdf.arrayBuffer()).byteLength;
    return { codes: codeIds.length, pages: createPrintSheet.pageCount, ms: elapsed, bytes };
  });
}

export async function printSheets(context: BenchContext): Promise<RowResult> {
  return inRowDirectory(context, 'row11', (directory) =>
    withGateway(context, 'row11', join(directory, 'bench.sqlite'), async (gateway) => {
      const { generateCodes } = await graphql<{ generateCodes: { id: string }[] }>(
        gateway,
        `
          mutation ($input: GenerateCodesInput!) {
            generateCodes(input: $input) {
              id
            }
          }
        `,
        { input: { series: { prefix: 'table-', from: 1, to: 500 }, imageSize: 100 } },
      );
      const ids = generateCodes.map((code) => code.id);
      const small = await printSheet(gateway, ids.slice(0, 50));
      const large = await printSheet(gateway, ids);
      const growth = (run: SheetRun) => (run.peakRssKiB - run.rssBeforeKiB) / 1024;
      context.log(
        `row 11: 500 codes in ${ms(large.ms)} (${large.pages} pages, ${num(large.bytes / 1024, 0)} KB), peak RSS +${num(growth(large), 1)} MB; ` +
          `50 codes in ${ms(small.ms)}, +${num(growth(small), 1)} MB`,
      );
      return {
        row: 11,
        what: 'createPrintSheet of 500 codes (A4, 4 columns, captions), stored',
        measured: `${ms(large.ms)} for ${large.pages} pages (${num(large.bytes / 1024, 0)} KB of PDF); peak RSS +${num(growth(large), 1)} MB`,
        floor: `50 codes: ${ms(small.ms)}, peak RSS +${num(growth(small), 1)} MB`,
        target: 'memory flat: peak growth within 32 MB of the 50-code sheet',
        met: growth(large) <= growth(small) + 32,
        data: { small, large },
      };
    }),
  );
}
