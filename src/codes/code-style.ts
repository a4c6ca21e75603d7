import { createHash } from 'node:crypto';
import { BadUserInputError } from '../errors';
import { sniffImage, type SniffedContentType } from '../images/image-sniff';

/** Largest center image accepted, in bytes (after base64 decoding). */
export const MAX_CENTER_IMAGE_BYTES = 1024 * 1024;
/** Largest center image in pixels per side: the cap of what sharp is asked to decode (a PNG may claim any size). */
export const MAX_CENTER_IMAGE_PIXELS = 4096;
/** Center image width as a fraction of the symbol's width: default and bounds (see README, "Branded codes"). */
export const DEFAULT_CENTER_IMAGE_SIZE = 0.2;
export const MIN_CENTER_IMAGE_SIZE = 0.05;
export const MAX_CENTER_IMAGE_SIZE = 0.5;
/**
 * Least contrast ratio (WCAG 2 relative luminance) between foreground and background: 3:1 is
 * WCAG's floor for graphical objects that must be told apart (SC 1.4.11). The decoders then
 * have the last word, on a blurred copy too.
 */
export const MIN_CONTRAST_RATIO = 3;
export const DEFAULT_FOREGROUND = '#000000';
export const DEFAULT_BACKGROUND = '#FFFFFF';

const COLOUR = /^#[0-9A-Fa-f]{6}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DATA_URL_PREFIX = /^data:image\/(?:png|jpeg);base64,/;

/** The style input as GraphQL hands it over. */
export interface CodeStyleRequest {
  centerImage?: string | null;
  centerImageSize?: number | null;
  foreground?: string | null;
  background?: string | null;
}

export interface CenterImage {
  bytes: Buffer;
  contentType: SniffedContentType;
  /** hex sha256 of the bytes: tells two styles apart without comparing megabytes */
  sha256: string;
  /** fraction of the symbol's width (quiet zone excluded) cleared for the image */
  size: number;
}

/** A validated style: colours as #RRGGBB in upper case. */
export interface CodeStyle {
  foreground: string;
  background: string;
  centerImage: CenterImage | null;
}

export function rgbOf(colour: string): { r: number; g: number; b: number } {
  const value = Number.parseInt(colour.slice(1), 16);
  return { r: value >> 16, g: (value >> 8) & 0xff, b: value & 0xff };
}

/** WCAG 2 relative luminance of an sRGB colour. */
function luminance(colour: string): number {
  const { r, g, b } = rgbOf(colour);
  const linear = (channel: number) => {
    const c = channel / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

export function contrastRatio(foreground: string, background: string): number {
  const [dark, light] = [luminance(foreground), luminance(background)].sort((a, b) => a - b);
  return (light + 0.05) / (dark + 0.05);
}

function colourOf(value: string | null | undefined, fallback: string, field: string): string {
  if (value == null) return fallback;
  if (!COLOUR.test(value))
    throw new BadUserInputError(field, `${field} must be a colour as #RRGGBB, got ${JSON.stringify(value.slice(0, 20))}`);
  return value.toUpperCase();
}

function centerImageOf(encoded: string, size: number | null | undefined): CenterImage {
  const field = 'style.centerImage';
  const base64 = encoded.replace(DATA_URL_PREFIX, '').replace(/\s+/g, '');
  // Checked on the text first, so that a huge string is never decoded.
  if (Math.floor((base64.length * 3) / 4) - (base64.match(/=+$/)?.[0].length ?? 0) > MAX_CENTER_IMAGE_BYTES) {
    throw new BadUserInputError(field, `centerImage must be at most ${MAX_CENTER_IMAGE_BYTES} bytes (1 MiB) once decoded`);
  }
  if (base64.length === 0 || base64.length % 4 === 1 || !BASE64.test(base64)) {
    throw new BadUserInputError(field, 'centerImage must be a PNG or JPEG encoded as base64');
  }
  const bytes = Buffer.from(base64, 'base64');
  const sniffed = sniffImage(bytes);
  if (!sniffed) throw new BadUserInputError(field, 'centerImage is not a complete PNG or JPEG image (only those two are accepted)');
  if (sniffed.width > MAX_CENTER_IMAGE_PIXELS || sniffed.height > MAX_CENTER_IMAGE_PIXELS) {
    throw new BadUserInputError(
      field,
      `centerImage must be at most ${MAX_CENTER_IMAGE_PIXELS} × ${MAX_CENTER_IMAGE_PIXELS} pixels, got ${sniffed.width} × ${sniffed.height}`,
    );
  }
  const fraction = size ?? DEFAULT_CENTER_IMAGE_SIZE;
  if (!Number.isFinite(fraction) || fraction < MIN_CENTER_IMAGE_SIZE || fraction > MAX_CENTER_IMAGE_SIZE) {
    throw new BadUserInputError(
      'style.centerImageSize',
      `centerImageSize is a fraction of the code's width from ${MIN_CENTER_IMAGE_SIZE} to ${MAX_CENTER_IMAGE_SIZE}, got ${fraction}`,
    );
  }
  return {
    bytes,
    contentType: sniffed.contentType,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    // Stored as thousandths (see code-style.store.ts): the same fraction whichever way it went in.
    size: Math.round(fraction * 1000) / 1000,
  };
}

/**
 * Checks a style: BAD_USER_INPUT on `style.foreground`, `style.background`,
 * `style.centerImage` or `style.centerImageSize`. Returns null for no style, and for a
 * style that asks for nothing but the defaults (it is the plain code).
 */
export function validateStyle(request: CodeStyleRequest | null | undefined): CodeStyle | null {
  if (request == null) return null;
  const foreground = colourOf(request.foreground, DEFAULT_FOREGROUND, 'style.foreground');
  const background = colourOf(request.background, DEFAULT_BACKGROUND, 'style.background');
  // The colour the caller chose is the one to change; when both were chosen, the foreground.
  const blamed = request.foreground == null && request.background != null ? 'style.background' : 'style.foreground';
  if (luminance(foreground) >= luminance(background)) {
    throw new BadUserInputError(
      blamed,
      `The foreground (${foreground}) must be darker than the background (${background}): many phone scanners read only dark modules on a light ground`,
    );
  }
  const ratio = contrastRatio(foreground, background);
  if (ratio < MIN_CONTRAST_RATIO) {
    throw new BadUserInputError(
      blamed,
      `The contrast between foreground ${foreground} and background ${background} is ${ratio.toFixed(2)}:1; a code needs at least ${MIN_CONTRAST_RATIO}:1 to scan from a print`,
    );
  }
  if (request.centerImage == null && request.centerImageSize != null) {
    throw new BadUserInputError('style.centerImageSize', 'centerImageSize needs a centerImage');
  }
  const centerImage = request.centerImage == null ? null : centerImageOf(request.centerImage, request.centerImageSize);
  if (!centerImage && foreground === DEFAULT_FOREGROUND && background === DEFAULT_BACKGROUND) return null;
  return { foreground, background, centerImage };
}

/** Whether two styles draw the same code (null: the plain black-on-white code). */
export function sameStyle(a: CodeStyle | null, b: CodeStyle | null): boolean {
  if (a === null || b === null) return a === b;
  return (
    a.foreground === b.foreground &&
    a.background === b.background &&
    a.centerImage?.sha256 === b.centerImage?.sha256 &&
    a.centerImage?.size === b.centerImage?.size
  );
}

/** A style in a few words, for error messages. */
export function describeStyle(style: CodeStyle | null): string {
  if (style === null) return 'no style (black on white)';
  const image = style.centerImage ? `, a center image of ${style.centerImage.size} of its width` : '';
  return `${style.foreground} on ${style.background}${image}`;
}
