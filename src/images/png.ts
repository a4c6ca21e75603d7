import { crc32, deflateSync, inflateSync } from 'node:zlib';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/**
 * Encodes a black-and-white image as a 1-bit grayscale PNG: the smallest and
 * fastest form for a QR code (a 2000 px code is a few KB instead of megabytes of RGBA).
 * `isDark(x, y)` is asked once per pixel of a row only when the row differs from
 * the previous one, which QR codes (rows repeated `scale` times) make rare.
 */
export function encodeBilevelPng(
  width: number,
  height: number,
  rowKey: (y: number) => number,
  isDark: (x: number, y: number) => boolean,
): Buffer {
  const stride = 1 + Math.ceil(width / 8);
  const raw = Buffer.alloc(stride * height);
  let previousKey = Number.NaN;
  for (let y = 0; y < height; y++) {
    const offset = y * stride;
    const key = rowKey(y);
    if (key === previousKey) {
      raw.copy(raw, offset, offset - stride, offset);
      continue;
    }
    previousKey = key;
    raw[offset] = 0; // filter type None
    for (let x = 0; x < width; x++) {
      // Bit set = white in 1-bit grayscale.
      if (!isDark(x, y)) raw[offset + 1 + (x >> 3)] |= 0x80 >> (x & 7);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 1; // bit depth
  header[9] = 0; // grayscale
  header[10] = 0; // deflate
  header[11] = 0; // adaptive filtering
  header[12] = 0; // no interlace
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

export interface BilevelImage {
  width: number;
  height: number;
  isDark(x: number, y: number): boolean;
}

function paeth(left: number, up: number, upLeft: number): number {
  const estimate = left + up - upLeft;
  const toLeft = Math.abs(estimate - left);
  const toUp = Math.abs(estimate - up);
  const toUpLeft = Math.abs(estimate - upLeft);
  if (toLeft <= toUp && toLeft <= toUpLeft) return left;
  return toUp <= toUpLeft ? up : upLeft;
}

/**
 * Decodes a 1-bit grayscale, non-interlaced PNG (any row filter). General PNG
 * decoders expand such an image to RGBA first, which takes seconds at 2000 px.
 */
export function decodeBilevelPng(png: Buffer): BilevelImage {
  if (!png.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG');
  let offset = 8;
  let width = 0;
  let height = 0;
  const idat: Buffer[] = [];
  while (offset + 8 <= png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('ascii', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 1 || data[9] !== 0 || data[12] !== 0) throw new Error('not a 1-bit grayscale PNG');
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const stride = Math.ceil(width / 8);
  const filtered = inflateSync(Buffer.concat(idat));
  if (filtered.length < (stride + 1) * height) throw new Error('truncated PNG data');
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = filtered[y * (stride + 1)];
    if (filter > 4) throw new Error(`unknown PNG filter ${filter}`);
    const row = y * stride;
    for (let i = 0; i < stride; i++) {
      const value = filtered[y * (stride + 1) + 1 + i];
      const left = i > 0 ? pixels[row + i - 1] : 0;
      const up = y > 0 ? pixels[row - stride + i] : 0;
      let predictor = 0;
      if (filter === 1) predictor = left;
      else if (filter === 2) predictor = up;
      else if (filter === 3) predictor = (left + up) >> 1;
      else if (filter === 4) predictor = paeth(left, up, i > 0 && y > 0 ? pixels[row - stride + i - 1] : 0);
      pixels[row + i] = (value + predictor) & 0xff;
    }
  }
  return {
    width,
    height,
    isDark: (x, y) => (pixels[y * stride + (x >> 3)] & (0x80 >> (x & 7))) === 0,
  };
}
