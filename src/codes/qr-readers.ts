import jsQR from 'jsqr';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { prepareZXingModule, readBarcodes, type ReadResult } from 'zxing-wasm/reader';

/**
 * Two independent QR decoders, and the copies of an image they read: jsQR (a JavaScript port
 * of ZXing's Java reader of 2018, its own binariser) and ZXing-C++ compiled to WebAssembly
 * (zxing-wasm: the decoder of Android's and many apps' scanners). A styled code is stored only
 * when both read it, on the image itself and on a copy that imitates a phone's photo of a print.
 */

/** Pixels per module of the copy of the image itself that the decoders read (see readCopies). */
export const CLEAN_PIXELS_PER_MODULE = 4;
/**
 * The phone photo: 4 pixels per module (a scanner works on a preview frame of about 1280 px,
 * in which a code a quarter of the frame wide has 6 to 8 pixels per module; 4 leaves a margin),
 * then a Gaussian blur of σ = 0.35 module (focus, motion, ink spread). Plain codes still read
 * every time there; a blur of half a module already defeats jsQR on plain codes (measured by
 * scripts/center-image-limits.ts's neighbour, see README "Branded codes").
 */
export const PHONE_PIXELS_PER_MODULE = 4;
export const PHONE_BLUR_MODULES = 0.35;

/** An image to read: raw 8-bit pixels (1 to 4 channels) and how large a module is in it. */
export interface PixelImage {
  pixels: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  pixelsPerModule: number;
}

/** What each decoder read on each copy (null: nothing). */
export interface Readings {
  jsqr: string | null;
  zxing: string | null;
  jsqrPhone: string | null;
  zxingPhone: string | null;
}

let zxingReady: Promise<unknown> | undefined;

/**
 * Loads ZXing-C++ once per process from node_modules: by default zxing-wasm fetches its .wasm
 * from a CDN, which a gateway must not depend on (nor trust) at run time.
 */
function zxing(): Promise<unknown> {
  zxingReady ??= prepareZXingModule({
    overrides: { wasmBinary: toArrayBuffer(readFileSync(require.resolve('zxing-wasm/reader/zxing_reader.wasm'))) },
    fireImmediately: true,
  });
  return zxingReady;
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

/** RGBA pixels as both decoders take them. */
interface Rgba {
  data: Uint8ClampedArray;
  width: number;
  height: number;
}

async function rgbaOf(pipeline: sharp.Sharp): Promise<Rgba> {
  const { data, info } = await pipeline.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8ClampedArray(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

function readJsQr(image: Rgba): string | null {
  // Dark modules on a light ground only: the gateway refuses the inverse (see code-style.ts).
  return jsQR(image.data, image.width, image.height, { inversionAttempts: 'dontInvert' })?.data ?? null;
}

async function readZxingResults(image: Rgba): Promise<ReadResult[]> {
  await zxing();
  // zxing-wasm takes anything shaped like ImageData; Node has no ImageData class.
  const imageData = { data: image.data, width: image.width, height: image.height, colorSpace: 'srgb' } as ImageData;
  const results = await readBarcodes(imageData, { formats: ['QRCode'], tryHarder: true, tryInvert: false, maxNumberOfSymbols: 1 });
  return results.filter((result) => result.isValid);
}

async function readZxing(image: Rgba): Promise<string | null> {
  return (await readZxingResults(image))[0]?.text ?? null;
}

/** The two copies the decoders read: the phone copy is made from the clean one, a fraction of the pixels. */
async function copiesOf(image: PixelImage): Promise<{ clean: Rgba; phone: Rgba }> {
  const sizeAt = (from: { width: number; height: number; pixelsPerModule: number }, pixelsPerModule: number) => ({
    width: Math.max(1, Math.round((from.width * pixelsPerModule) / from.pixelsPerModule)),
    height: Math.max(1, Math.round((from.height * pixelsPerModule) / from.pixelsPerModule)),
  });
  // The image itself, reduced by averaging to CLEAN_PIXELS_PER_MODULE when its modules are
  // larger (never enlarged): every module keeps 16 pixels, more than a decoder samples, and
  // jsQR on the full 2000 px would cost a quarter of a second for nothing.
  let input = sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } });
  if (image.pixelsPerModule > CLEAN_PIXELS_PER_MODULE) {
    input = input.resize({ ...sizeAt(image, CLEAN_PIXELS_PER_MODULE), kernel: 'linear', fit: 'fill' });
  }
  const clean = await rgbaOf(input);
  const cleanModules = Math.min(image.pixelsPerModule, CLEAN_PIXELS_PER_MODULE);
  let phone = sharp(Buffer.from(clean.data.buffer, clean.data.byteOffset, clean.data.byteLength), {
    raw: { width: clean.width, height: clean.height, channels: 4 },
  });
  if (cleanModules > PHONE_PIXELS_PER_MODULE) {
    phone = phone.resize({
      ...sizeAt({ ...clean, pixelsPerModule: cleanModules }, PHONE_PIXELS_PER_MODULE),
      kernel: 'linear',
      fit: 'fill',
    });
  }
  const phoneRgba = await rgbaOf(phone.blur(Math.max(0.3, PHONE_BLUR_MODULES * Math.min(PHONE_PIXELS_PER_MODULE, cleanModules))));
  return { clean, phone: phoneRgba };
}

/** What jsQR and ZXing-C++ read on the image and on its phone-photo copy. */
export async function readCopies(image: PixelImage): Promise<Readings> {
  const { clean, phone } = await copiesOf(image);
  return {
    jsqr: readJsQr(clean),
    zxing: await readZxing(clean),
    jsqrPhone: readJsQr(phone),
    zxingPhone: await readZxing(phone),
  };
}

/** The first reading that is not `expected`, described for an error message; null when all four read it. */
export function firstMisreading(readings: Readings, expected: string): string | null {
  const names: Record<keyof Readings, string> = {
    jsqr: 'jsQR',
    zxing: 'ZXing',
    jsqrPhone: 'jsQR on a blurred, downscaled copy (as a phone photographs a print)',
    zxingPhone: 'ZXing on a blurred, downscaled copy (as a phone photographs a print)',
  };
  for (const key of Object.keys(names) as (keyof Readings)[]) {
    if (readings[key] !== expected) return readings[key] === null ? `${names[key]} could not read it` : `${names[key]} read something else`;
  }
  return null;
}

/** Where a QR symbol lies in an image, as ZXing-C++ finds it: for styling images made elsewhere. */
export interface FoundSymbol {
  text: string;
  /** modules across the symbol (without quiet zone) */
  modules: number;
  centerX: number;
  centerY: number;
  /** width of the symbol in pixels */
  widthPixels: number;
}

/** Reads the one QR code of an image (ZXing-C++ on every pixel); null when there is none. */
export async function findSymbol(pipeline: sharp.Sharp): Promise<FoundSymbol | null> {
  const image = await rgbaOf(pipeline);
  const [result] = await readZxingResults(image);
  const version = Number(result?.version);
  if (!result || !Number.isInteger(version) || version < 1 || version > 40) return null;
  const { topLeft, topRight, bottomLeft, bottomRight } = result.position;
  const corners = [topLeft, topRight, bottomRight, bottomLeft];
  return {
    text: result.text,
    modules: 17 + 4 * version,
    centerX: corners.reduce((sum, corner) => sum + corner.x, 0) / 4,
    centerY: corners.reduce((sum, corner) => sum + corner.y, 0) / 4,
    widthPixels: Math.hypot(topRight.x - topLeft.x, topRight.y - topLeft.y),
  };
}
