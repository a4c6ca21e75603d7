import { BarcodeFormat, BinaryBitmap, DecodeHintType, HybridBinarizer, QRCodeReader, RGBLuminanceSource } from '@zxing/library';
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { prepareZXingModule, readBarcodes, type ReadResult } from 'zxing-wasm/reader';

/**
 * Reads a PNG the way a phone would: with an independent decoder (ZXing, not the jsQR the gateway
 * checks itself with), from grey levels, after averaging blocks of `factor` × `factor` pixels.
 * Averaging rather than sampling keeps every module visible whatever the module size.
 */
export function readQr(png: Buffer, factor = 1): string {
  const image = PNG.sync.read(png);
  const width = Math.floor(image.width / factor);
  const height = Math.floor(image.height / factor);
  const luminance = new Uint8ClampedArray(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        for (let dx = 0; dx < factor; dx++) {
          const offset = ((y * factor + dy) * image.width + (x * factor + dx)) * 4;
          // Green-weighted grey, as cameras see it; the codes are black and white anyway.
          sum += (image.data[offset] + 2 * image.data[offset + 1] + image.data[offset + 2]) / 4;
        }
      }
      luminance[y * width + x] = sum / (factor * factor);
    }
  }
  const bitmap = new BinaryBitmap(new HybridBinarizer(new RGBLuminanceSource(luminance, width, height)));
  const result = new QRCodeReader().decode(bitmap, new Map([[DecodeHintType.TRY_HARDER, true]]));
  expect(result.getBarcodeFormat()).toBe(BarcodeFormat.QR_CODE);
  return result.getText();
}

let zxingCpp: Promise<void> | undefined;

/**
 * Every QR code ZXing-C++ compiled to WebAssembly (zxing-wasm), the decoder of Android's and
 * many apps' scanners, reads validly in an image: encoded bytes (PNG, JPEG) or raw RGBA
 * pixels. Independent of the jsQR the gateway checks its own images with. Its .wasm is loaded
 * once, from node_modules: by default zxing-wasm fetches it from a CDN.
 */
export async function readQrResults(image: Uint8Array | ImageData): Promise<ReadResult[]> {
  zxingCpp ??= prepareZXingModule({
    overrides: { wasmBinary: readFileSync(require.resolve('zxing-wasm/reader/zxing_reader.wasm')).buffer as ArrayBuffer },
    fireImmediately: true,
  }).then(() => undefined);
  await zxingCpp;
  const results = await readBarcodes(image, { formats: ['QRCode'], tryHarder: true, maxNumberOfSymbols: 255 });
  return results.filter((result) => result.isValid);
}

/** The text of every QR code in an image (PNG or JPEG bytes), read by ZXing-C++ (readQrResults). */
export async function readQrCodes(image: Buffer): Promise<string[]> {
  return (await readQrResults(new Uint8Array(image))).map((result) => result.text);
}

/** Every QR code of an image with its width in pixels (top-left to top-right corner of the symbol). */
export async function readQrCodesWithWidth(image: Buffer): Promise<{ text: string; widthPixels: number }[]> {
  return (await readQrResults(new Uint8Array(image))).map((result) => ({
    text: result.text,
    widthPixels: Math.hypot(result.position.topRight.x - result.position.topLeft.x, result.position.topRight.y - result.position.topLeft.y),
  }));
}

/** The one QR code of an image, read by ZXing-C++; fails unless exactly one is found. */
export async function readOneQr(image: Buffer): Promise<string> {
  const texts = await readQrCodes(image);
  if (texts.length !== 1) throw new Error(`expected one QR code, read ${texts.length}: ${JSON.stringify(texts)}`);
  return texts[0];
}
