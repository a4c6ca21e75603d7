import { crc32 } from 'node:zlib';

export type SniffedContentType = 'image/png' | 'image/jpeg';

export interface SniffedImage {
  contentType: SniffedContentType;
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** The IEND chunk is always the same 12 bytes: zero length, type, and its CRC. */
const PNG_IEND_CHUNK = Buffer.from([0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);
const PNG_IHDR_DATA_LENGTH = 13;
/** Signature, then IHDR: length, type, data, CRC. */
const PNG_MIN_HEADER_BYTES = 8 + 4 + 4 + PNG_IHDR_DATA_LENGTH + 4;
/** PNG caps dimensions at 2^31 - 1 so they fit a signed 32-bit integer. */
const PNG_MAX_DIMENSION = 0x7fffffff;
/** Bit depths the PNG specification allows for each colour type. */
const PNG_BIT_DEPTHS_BY_COLOR_TYPE: ReadonlyMap<number, readonly number[]> = new Map([
  [0, [1, 2, 4, 8, 16]],
  [2, [8, 16]],
  [3, [1, 2, 4, 8]],
  [4, [8, 16]],
  [6, [8, 16]],
]);

/** Start-of-frame markers that carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames. */
const JPEG_SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const JPEG_MARKER_EOI = 0xd9;
const JPEG_MARKER_SOS = 0xda;

/**
 * Tells what an image is from its bytes alone: headers and file names lie, bytes do not.
 * Returns null unless the bytes are a complete PNG or JPEG with a non-zero size.
 *
 * "Complete" means the header parses and the file ends with its end marker (PNG IEND,
 * JPEG EOI), so a download cut short is refused rather than stored as a broken image.
 * Pixel data is not decoded: this is a cheap gate, not a validator.
 */
export function sniffImage(bytes: Buffer): SniffedImage | null {
  if (startsWith(bytes, PNG_SIGNATURE)) return sniffPng(bytes);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return sniffJpeg(bytes);
  return null;
}

function sniffPng(bytes: Buffer): SniffedImage | null {
  if (bytes.length < PNG_MIN_HEADER_BYTES + PNG_IEND_CHUNK.length) return null;
  const chunkLength = bytes.readUInt32BE(8);
  const chunkType = bytes.toString('latin1', 12, 16);
  if (chunkLength !== PNG_IHDR_DATA_LENGTH || chunkType !== 'IHDR') return null;

  // The CRC covers the chunk type and data; checking it rejects bytes that merely look like a PNG.
  const crcStart = 16 + PNG_IHDR_DATA_LENGTH;
  if (crc32(bytes.subarray(12, crcStart)) !== bytes.readUInt32BE(crcStart)) return null;

  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const bitDepth = bytes[24];
  const colorType = bytes[25];
  const compression = bytes[26];
  const filter = bytes[27];
  const interlace = bytes[28];
  if (width === 0 || height === 0 || width > PNG_MAX_DIMENSION || height > PNG_MAX_DIMENSION) return null;
  if (!PNG_BIT_DEPTHS_BY_COLOR_TYPE.get(colorType)?.includes(bitDepth)) return null;
  if (compression !== 0 || filter !== 0 || (interlace !== 0 && interlace !== 1)) return null;

  if (!endsWith(bytes, PNG_IEND_CHUNK)) return null;
  return { contentType: 'image/png', width, height };
}

function sniffJpeg(bytes: Buffer): SniffedImage | null {
  if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== JPEG_MARKER_EOI) return null;

  let offset = 2;
  while (offset < bytes.length) {
    if (bytes[offset] !== 0xff) return null;
    // Any number of 0xFF fill bytes may precede a marker.
    while (offset < bytes.length && bytes[offset] === 0xff) offset++;
    if (offset >= bytes.length) return null;
    const marker = bytes[offset];
    offset++;

    // TEM and RSTn stand alone, without a length.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    // Reaching the image data or its end before a frame header means there is no size to read.
    if (marker === JPEG_MARKER_SOS || marker === JPEG_MARKER_EOI || marker === 0xd8 || marker === 0x00) return null;

    if (offset + 2 > bytes.length) return null;
    const segmentLength = bytes.readUInt16BE(offset);
    if (segmentLength < 2 || offset + segmentLength > bytes.length) return null;

    if (JPEG_SOF_MARKERS.has(marker)) return readJpegFrameHeader(bytes, offset, segmentLength);
    offset += segmentLength;
  }
  return null;
}

/** `offset` points at the segment length; the frame header follows it. */
function readJpegFrameHeader(bytes: Buffer, offset: number, segmentLength: number): SniffedImage | null {
  const fixedFrameHeaderLength = 8; // length, precision, height, width, component count
  if (segmentLength < fixedFrameHeaderLength) return null;
  const height = bytes.readUInt16BE(offset + 3);
  const width = bytes.readUInt16BE(offset + 5);
  const componentCount = bytes[offset + 7];
  if (componentCount === 0 || segmentLength !== fixedFrameHeaderLength + 3 * componentCount) return null;
  // Height 0 defers the size to a later DNL marker; no code image needs that, so treat it as unknown.
  if (width === 0 || height === 0) return null;
  return { contentType: 'image/jpeg', width, height };
}

function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  return bytes.length >= prefix.length && bytes.subarray(0, prefix.length).equals(prefix);
}

function endsWith(bytes: Buffer, suffix: Buffer): boolean {
  return bytes.length >= suffix.length && bytes.subarray(bytes.length - suffix.length).equals(suffix);
}
