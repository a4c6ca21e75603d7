/**
 * How large a center image may be, at each QR error-correction level, for each decoder the
 * gateway checks styled codes with: prints the table published in README ("Branded codes").
 *
 *   npm run build:server && node dist/scripts/center-image-limits.js
 *
 * For each level L, M, Q, H it renders the m.me link of a typical ref (35 to 45 characters)
 * at 1000 px exactly as the gateway does (styled-code.ts: modules cleared under the image,
 * half a module of background around it), with a center image that is as hard as logos get
 * (dark, with detail: a checkerboard of 6 × 6 squares, a dark ring and text-like bars), and
 * raises centerImageSize by 0.01 until a decoder fails. A size counts only when it reads for
 * every one of the links; the table gives the largest such size for each decoder on the
 * image itself and on the phone copy (downscaled to 4 px per module, blurred by σ = 0.35
 * module: qr-readers.ts). The gateway refuses what any of the four fails to read.
 */
import sharp from 'sharp';
import { readCopies, type Readings } from '../src/codes/qr-readers';
import { centerModules, qrLayout, type ErrorCorrectionLevel } from '../src/codes/styled-code';

const LINKS = [
  'https://m.me/100000000000001?ref=table-7',
  'https://m.me/100000000000001?ref=table-42',
  'https://m.me/100000000000001?ref=spring-menu:entry',
  'https://m.me/104785123456789?ref=poster.A4-3',
  'https://m.me/104785123456789?ref=flyer_2026-11',
];
const LEVELS: ErrorCorrectionLevel[] = ['L', 'M', 'Q', 'H'];
const IMAGE_SIZE = 1000;

/** The test logo: dark, detailed, no flat area a decoder could mistake for light modules. */
async function hardLogo(side: number): Promise<Buffer> {
  const pixels = Buffer.alloc(side * side * 3, 255);
  const cell = Math.max(1, Math.floor(side / 6));
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const checker = (Math.floor(x / cell) + Math.floor(y / cell)) % 2 === 0;
      const radius = Math.hypot(x - side / 2, y - side / 2) / (side / 2);
      const ring = radius > 0.6 && radius < 0.8;
      const bar = y % Math.max(2, Math.floor(side / 20)) === 0;
      const dark = checker !== ring || bar;
      const offset = (y * side + x) * 3;
      pixels[offset] = dark ? 30 : 240;
      pixels[offset + 1] = dark ? 40 : 200;
      pixels[offset + 2] = dark ? 120 : 60;
    }
  }
  return sharp(pixels, { raw: { width: side, height: side, channels: 3 } })
    .png()
    .toBuffer();
}

/** The gateway's layout at any level (the gateway itself always uses H). */
async function render(link: string, level: ErrorCorrectionLevel, fraction: number, logo: Buffer) {
  const { modules, symbolModules: n, scale, margin } = qrLayout(link, IMAGE_SIZE, level);
  const cleared = centerModules(n, fraction);
  const from = (n - cleared) / 2;
  const pixels = Buffer.alloc(IMAGE_SIZE * IMAGE_SIZE * 3, 255);
  for (let y = 0; y < n * scale; y++) {
    for (let x = 0; x < n * scale; x++) {
      const row = Math.floor(y / scale);
      const column = Math.floor(x / scale);
      const inCenter = row >= from && row < from + cleared && column >= from && column < from + cleared;
      if (modules.get(row, column) === 1 && !inCenter)
        pixels.fill(0, ((margin + y) * IMAGE_SIZE + margin + x) * 3, ((margin + y) * IMAGE_SIZE + margin + x) * 3 + 3);
    }
  }
  const box = cleared * scale - scale;
  const at = margin + from * scale + Math.floor(scale / 2);
  const center = await sharp(logo).resize(box, box).removeAlpha().raw().toBuffer();
  for (let y = 0; y < box; y++) center.copy(pixels, ((at + y) * IMAGE_SIZE + at) * 3, y * box * 3, (y + 1) * box * 3);
  return { pixels, width: IMAGE_SIZE, height: IMAGE_SIZE, channels: 3 as const, pixelsPerModule: scale, modules: n, cleared };
}

async function main(): Promise<void> {
  const logo = await hardLogo(600);
  const keys: (keyof Readings)[] = ['jsqr', 'zxing', 'jsqrPhone', 'zxingPhone'];
  const rows: string[] = [];
  for (const level of LEVELS) {
    const largest: Record<keyof Readings, number> = { jsqr: 0, zxing: 0, jsqrPhone: 0, zxingPhone: 0 };
    const failed = new Set<keyof Readings>();
    for (let hundredths = 5; hundredths <= 60 && failed.size < keys.length; hundredths++) {
      const fraction = hundredths / 100;
      const ok = new Set(keys);
      for (const link of LINKS) {
        const image = await render(link, level, fraction, logo);
        const readings = await readCopies(image);
        for (const key of keys) if (readings[key] !== link) ok.delete(key);
      }
      for (const key of keys) {
        if (failed.has(key)) continue;
        if (ok.has(key)) largest[key] = fraction;
        else failed.add(key);
      }
    }
    const all = Math.min(...keys.map((key) => largest[key]));
    const area = (fraction: number) => `${Math.round(fraction * 100)} % (${Math.round(fraction * fraction * 100)} % of the area)`;
    rows.push(`| ${level} | ${keys.map((key) => area(largest[key])).join(' | ')} | **${area(all)}** |`);
    process.stderr.write(`level ${level} done\n`);
  }
  process.stdout.write(
    [
      '| level | jsQR | ZXing-C++ | jsQR, phone copy | ZXing-C++, phone copy | all four (what the gateway accepts) |',
      '|---|---|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
