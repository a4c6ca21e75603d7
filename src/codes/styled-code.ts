import QRCode from 'qrcode';
import sharp from 'sharp';
import { BadUserInputError } from '../errors';
import type { CodeImage } from '../images/image.types';
import { rgbOf, type CenterImage, type CodeStyle } from './code-style';
import { findSymbol, firstMisreading, readCopies, type PixelImage } from './qr-readers';

/** Quiet zone the QR standard requires around the symbol, in modules. */
export const QUIET_ZONE_MODULES = 4;

/**
 * Error correction of every LOCAL code: H, the highest (30 % of the codewords may be lost),
 * which a center image needs and which costs a plain code of a short link nothing visible.
 */
export const ERROR_CORRECTION_LEVEL = 'H';

export type ErrorCorrectionLevel = 'L' | 'M' | 'Q' | 'H';

/** Where the modules of a QR code land on an image of imageSize pixels. */
export interface QrLayout {
  modules: { size: number; get(row: number, column: number): number };
  /** modules across the symbol, quiet zone excluded */
  symbolModules: number;
  /** whole pixels per module: every module the same size, which scanners need */
  scale: number;
  /** pixels before the symbol's first module (the quiet zone takes the pixels left over) */
  margin: number;
}

export function qrLayout(text: string, imageSize: number, level: ErrorCorrectionLevel = ERROR_CORRECTION_LEVEL): QrLayout {
  const { modules } = QRCode.create(text, { errorCorrectionLevel: level });
  const symbolModules = modules.size;
  const scale = Math.floor(imageSize / (symbolModules + 2 * QUIET_ZONE_MODULES));
  if (scale < 1) {
    const minimum = symbolModules + 2 * QUIET_ZONE_MODULES;
    throw new BadUserInputError('imageSize', `imageSize ${imageSize} is too small for this ref: its QR code needs at least ${minimum} px`);
  }
  return { modules, symbolModules, scale, margin: Math.floor((imageSize - symbolModules * scale) / 2) };
}

/**
 * Modules cleared under a center image: an odd number, so that the square sits exactly on
 * the symbol's middle module (a symbol always has an odd number of modules).
 */
export function centerModules(symbolModules: number, fraction: number): number {
  const wanted = Math.max(3, Math.round(fraction * symbolModules));
  return wanted % 2 === 1 ? wanted : wanted + 1;
}

/** Center images as decoded and resized, by image, size and background: a series of 500 codes decodes its logo once. */
const preparedCenters = new Map<string, Promise<Buffer>>();
const PREPARED_CENTERS_KEPT = 16;

/** The center image as RGB pixels of `box` × `box`, fitted inside on the background colour. */
function preparedCenter(image: CenterImage, box: number, background: string): Promise<Buffer> {
  const key = `${image.sha256}:${box}:${background}`;
  let prepared = preparedCenters.get(key);
  if (!prepared) {
    prepared = sharp(image.bytes, { limitInputPixels: 4096 * 4096, failOn: 'error' })
      .rotate() // a JPEG from a phone says in EXIF which way is up
      .resize(box, box, { fit: 'contain', background })
      .flatten({ background })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer()
      .catch(() => {
        throw new BadUserInputError('style.centerImage', 'centerImage could not be decoded: its pixel data is damaged or unsupported');
      });
    prepared.catch(() => preparedCenters.delete(key));
    preparedCenters.set(key, prepared);
    if (preparedCenters.size > PREPARED_CENTERS_KEPT) preparedCenters.delete(preparedCenters.keys().next().value as string);
  }
  return prepared;
}

/** A styled code that the decoders could not read: refused on the part of the style to blame. */
function unreadable(style: CodeStyle, why: string): BadUserInputError {
  if (style.centerImage) {
    return new BadUserInputError(
      'style.centerImage',
      `With this center image the code does not scan reliably (${why}): use a smaller centerImageSize (now ${style.centerImage.size}) or a simpler image.`,
    );
  }
  return new BadUserInputError(
    'style.foreground',
    `With these colours the code does not scan reliably (${why}): choose colours with more contrast.`,
  );
}

/** Encodes the checked pixels as the stored PNG, after both decoders read `expected` on them. */
async function checkedPng(image: PixelImage, expected: string, style: CodeStyle): Promise<Buffer> {
  const png = sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } })
    // Level 2: a third of level 6's time for a file about a third larger (30 to 45 KB at 1000 px).
    .png({ compressionLevel: 2, adaptiveFiltering: false })
    .toBuffer();
  const why = firstMisreading(await readCopies(image), expected);
  if (why !== null) {
    await png.catch(() => undefined);
    throw unreadable(style, why);
  }
  return png;
}

export interface StyledLocalCode {
  image: CodeImage;
  svg: Buffer;
}

/** A styled LOCAL code: PNG (checked by both decoders) and SVG, drawn from the same modules. */
export async function renderStyledCode(link: string, imageSize: number, style: CodeStyle): Promise<StyledLocalCode> {
  const layout = qrLayout(link, imageSize);
  const { modules, symbolModules: n, scale, margin } = layout;
  const cleared = style.centerImage ? centerModules(n, style.centerImage.size) : 0;
  const clearedFrom = (n - cleared) / 2;
  const isCleared = (row: number, column: number) =>
    cleared > 0 && row >= clearedFrom && row < clearedFrom + cleared && column >= clearedFrom && column < clearedFrom + cleared;

  // Drawn row by row in JavaScript: a row of modules is built once and copied `scale` times,
  // which is several times cheaper than asking libvips to scale a one-pixel-per-module image.
  const pixelOf = (colour: string) => {
    const { r, g, b } = rgbOf(colour);
    return Buffer.from([r, g, b]);
  };
  const fg = pixelOf(style.foreground);
  const bg = pixelOf(style.background);
  const stride = imageSize * 3;
  const pixels = Buffer.alloc(stride * imageSize);
  const background = Buffer.alloc(stride);
  for (let x = 0; x < imageSize; x++) bg.copy(background, x * 3);
  const line = Buffer.alloc(stride);
  const foregroundRun = Buffer.alloc(scale * 3);
  for (let x = 0; x < scale; x++) fg.copy(foregroundRun, x * 3);
  for (let y = 0; y < imageSize; y++) {
    const row = Math.floor((y - margin) / scale);
    if (y < margin || row >= n) {
      background.copy(pixels, y * stride);
      continue;
    }
    if ((y - margin) % scale === 0) {
      background.copy(line);
      for (let column = 0; column < n; column++) {
        if (modules.get(row, column) === 1 && !isCleared(row, column)) foregroundRun.copy(line, (margin + column * scale) * 3);
      }
    }
    line.copy(pixels, y * stride);
  }
  if (style.centerImage) {
    // Half a module of background between the image and the modules around it.
    const box = Math.max(1, cleared * scale - scale);
    const at = margin + clearedFrom * scale + Math.floor(scale / 2);
    const center = await preparedCenter(style.centerImage, box, style.background);
    for (let y = 0; y < box; y++) center.copy(pixels, (at + y) * stride + at * 3, y * box * 3, (y + 1) * box * 3);
  }

  const png = await checkedPng({ pixels, width: imageSize, height: imageSize, channels: 3, pixelsPerModule: scale }, link, style);
  return {
    image: { bytes: png, contentType: 'image/png', width: imageSize, height: imageSize },
    svg: codeSvg(layout, imageSize, style, cleared > 0 ? { cleared, clearedFrom } : null),
  };
}

/**
 * The same code as SVG: a background, one path of the dark modules (runs of a row merged),
 * and the center image embedded as it was given. Coordinates are modules, the quiet zone
 * included, so it scales to any print size; width and height say the pixels it was asked at.
 */
export function codeSvg(
  layout: QrLayout,
  imageSize: number,
  style: CodeStyle | null,
  center: { cleared: number; clearedFrom: number } | null,
): Buffer {
  const { modules, symbolModules: n } = layout;
  const q = QUIET_ZONE_MODULES;
  const inCenter = (row: number, column: number) =>
    center !== null &&
    row >= center.clearedFrom &&
    row < center.clearedFrom + center.cleared &&
    column >= center.clearedFrom &&
    column < center.clearedFrom + center.cleared;
  const runs: string[] = [];
  for (let row = 0; row < n; row++) {
    let column = 0;
    while (column < n) {
      if (modules.get(row, column) !== 1 || inCenter(row, column)) {
        column++;
        continue;
      }
      const start = column;
      while (column < n && modules.get(row, column) === 1 && !inCenter(row, column)) column++;
      runs.push(`M${start + q} ${row + q}h${column - start}v1h-${column - start}z`);
    }
  }
  const side = n + 2 * q;
  const foreground = style?.foreground ?? '#000000';
  const background = style?.background ?? '#FFFFFF';
  let image = '';
  if (center && style?.centerImage) {
    const { contentType, bytes } = style.centerImage;
    const at = center.clearedFrom + q + 0.5;
    const box = center.cleared - 1;
    image = `<image x="${at}" y="${at}" width="${box}" height="${box}" preserveAspectRatio="xMidYMid meet" href="data:${contentType};base64,${bytes.toString('base64')}"/>`;
  }
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="${imageSize}" height="${imageSize}" viewBox="0 0 ${side} ${side}" shape-rendering="crispEdges">` +
      `<rect width="${side}" height="${side}" fill="${background}"/>` +
      `<path fill="${foreground}" d="${runs.join('')}"/>${image}</svg>\n`,
    'utf8',
  );
}

/**
 * Styles an image that a Messenger Code API returned: recoloured (dark to foreground, light
 * to background, grey in between) and the center image drawn over a square of background on
 * the symbol's middle, then read back by both decoders as it was before. The symbol is
 * located by ZXing-C++ on the image as downloaded; an image with no QR code in it (a genuine
 * Messenger Code is a ring, not a QR code) cannot be checked, so it is not styled.
 */
export async function styleDownloadedCode(downloaded: CodeImage, style: CodeStyle): Promise<CodeImage> {
  const original = sharp(downloaded.bytes, { limitInputPixels: 2000 * 2000 }).flatten({ background: '#FFFFFF' });
  const symbol = await findSymbol(original.clone());
  if (!symbol) {
    throw new BadUserInputError(
      'style',
      'The image the Messenger Code API returned is not a QR code the gateway can read back, so it cannot check a styled version: generate it without style.',
    );
  }
  const { data: grey, info } = await original.clone().greyscale().raw().toBuffer({ resolveWithObject: true });
  const fg = rgbOf(style.foreground);
  const bg = rgbOf(style.background);
  const pixels = Buffer.alloc(info.width * info.height * 3);
  for (let index = 0; index < info.width * info.height; index++) {
    const light = grey[index] / 255;
    pixels[index * 3] = Math.round(fg.r + (bg.r - fg.r) * light);
    pixels[index * 3 + 1] = Math.round(fg.g + (bg.g - fg.g) * light);
    pixels[index * 3 + 2] = Math.round(fg.b + (bg.b - fg.b) * light);
  }
  const pixelsPerModule = symbol.widthPixels / symbol.modules;
  let styled = pixels;
  if (style.centerImage) {
    const pad = Math.max(1, Math.round(style.centerImage.size * symbol.widthPixels));
    const box = Math.max(1, Math.round(pad - pixelsPerModule));
    const padAt = { left: Math.round(symbol.centerX - pad / 2), top: Math.round(symbol.centerY - pad / 2) };
    const center = await preparedCenter(style.centerImage, box, style.background);
    const padPixels = await sharp({ create: { width: pad, height: pad, channels: 3, background: style.background } })
      .removeAlpha()
      .raw()
      .toBuffer();
    styled = await sharp(pixels, { raw: { width: info.width, height: info.height, channels: 3 } })
      .composite([
        { input: padPixels, raw: { width: pad, height: pad, channels: 3 }, ...padAt },
        {
          input: center,
          raw: { width: box, height: box, channels: 3 },
          left: padAt.left + Math.round((pad - box) / 2),
          top: padAt.top + Math.round((pad - box) / 2),
        },
      ])
      .removeAlpha()
      .raw()
      .toBuffer();
  }
  const png = await checkedPng(
    { pixels: styled, width: info.width, height: info.height, channels: 3, pixelsPerModule },
    symbol.text,
    style,
  );
  return { bytes: png, contentType: 'image/png', width: info.width, height: info.height };
}
