/**
 * Row 13: generateCode with a center image at 1000 px: colours and a 512 px PNG logo, each code
 * drawn, read back by jsQR and ZXing-C++ on the image and on its phone copy (qr-readers.ts), and
 * stored with its SVG. Beside it, in the same gateway and run, the plain generateCode at 1000 px.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import type { GatewayProcess } from './gateway-process';
import { ms, num, type RowResult } from './report';
import { graphql, inRowDirectory, QUICK, withGateway, type BenchContext } from './rows';

/** Concurrent clients: enough to keep both cores of the gateway busy (libvips works on threads of its own). */
const CLIENTS = 4;
const TARGET_PER_SECOND = 30;

const GENERATE = `
  mutation ($input: GenerateCodeInput!) {
    generateCode(input: $input) {
      id
      svgUrl
    }
  }
`;

/** A brand logo as customers send them: a 512 px PNG with colour, transparency and edges. */
async function logo(): Promise<string> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="512" viewBox="0 0 10 10">
    <circle cx="5" cy="5" r="4.6" fill="#0084FF"/><path d="M2.2 6.4 L4.2 4.2 L5.4 5.4 L7.8 3.6 L5.8 5.8 L4.6 4.6 Z" fill="#FFFFFF"/></svg>`;
  return (await sharp(Buffer.from(svg)).png().toBuffer()).toString('base64');
}

interface Round {
  codes: number;
  seconds: number;
  perSecond: number;
  p50: number;
  p99: number;
}

/** CLIENTS callers of generateCode with distinct refs for `durationMs`; every call must succeed. */
async function round(
  gateway: GatewayProcess,
  prefix: string,
  durationMs: number,
  style: Record<string, unknown> | undefined,
): Promise<Round> {
  const latencies: number[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() - started < durationMs) {
        const ref = `${prefix}-${next++}`;
        const before = performance.now();
        await graphql(gateway, GENERATE, { input: { data: { ref }, imageSize: 1000, ...(style ? { style } : {}) } });
        latencies.push(performance.now() - before);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (quantile: number) => latencies[Math.min(latencies.length - 1, Math.floor(quantile * latencies.length))] ?? 0;
  return { codes: latencies.length, seconds, perSecond: latencies.length / seconds, p50: at(0.5), p99: at(0.99) };
}

export async function styledCodes(context: BenchContext): Promise<RowResult> {
  const durationMs = context.scale === QUICK ? 4_000 : 15_000;
  return inRowDirectory(context, 'row13', (directory) =>
    withGateway(context, 'row13', join(directory, 'bench.sqlite'), async (gateway) => {
      const style = { centerImage: await logo(), centerImageSize: 0.2, foreground: '#1A237E', background: '#FFFFFF' };
      await round(gateway, 'warmup', 2_000, style);
      const styled = await round(gateway, 'styled', durationMs, style);
      const plain = await round(gateway, 'plain', durationMs, undefined);
      context.log(
        `row 13: styled ${num(styled.perSecond)} codes/s (p50 ${ms(styled.p50)}), plain ${num(plain.perSecond)} codes/s (p50 ${ms(plain.p50)})`,
      );
      return {
        row: 13,
        what: `generateCode with a center image (512 px PNG, 0.2 of the width) and colours at 1000 px, both decoders and SVG included, ${CLIENTS} concurrent clients`,
        measured: `${num(styled.perSecond)} codes/s (p50 ${ms(styled.p50)}, p99 ${ms(styled.p99)})`,
        floor: `plain generateCode at 1000 px: ${num(plain.perSecond)} codes/s`,
        target: `≥ ${TARGET_PER_SECOND} codes/s`,
        met: styled.perSecond >= TARGET_PER_SECOND,
        data: { styled, plain, clients: CLIENTS },
      };
    }),
  );
}
