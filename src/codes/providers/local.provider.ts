import jsQR from 'jsqr';
import { BadUserInputError } from '../../errors';
import { decodeBilevelPng, encodeBilevelPng } from '../../images/png';
import { CodeProviderKind, type CodeImage } from '../../images/image.types';
import { codeSvg, qrLayout, renderStyledCode } from '../styled-code';
import type { CodeImageProvider, CodeImageRequest } from './code-image-provider';

/**
 * Renders a standard QR code of the code's link (the page's m.me link, or a REDIRECT
 * code's link to the gateway), as Meta advises in place of Messenger Codes, with its SVG.
 * Error correction H (30 %) leaves room for a center image (styled-code.ts draws styled codes).
 */
export class LocalCodeImageProvider implements CodeImageProvider {
  readonly kind = CodeProviderKind.LOCAL;
  /** A QR code of the m.me link needs no call to Facebook. */
  readonly needsAccessToken = false;

  async obtain(request: CodeImageRequest): Promise<CodeImage> {
    const { link } = request;
    if (request.style) {
      const { image, svg } = await renderStyledCode(link, request.imageSize, request.style);
      return { ...image, svg };
    }
    const { png, pixelsPerModule, svg } = renderQrPng(link, request.imageSize);
    assertReadsBack(png, link, pixelsPerModule);
    return { bytes: png, contentType: 'image/png', width: request.imageSize, height: request.imageSize, svg };
  }
}

/** A plain (black on white) code as a 1-bit PNG, and as SVG. */
export function renderQrPng(text: string, imageSize: number): { png: Buffer; pixelsPerModule: number; svg: Buffer } {
  const layout = qrLayout(text, imageSize);
  const { modules, symbolModules, scale, margin } = layout;
  const moduleAt = (pixel: number): number => {
    const position = pixel - margin;
    return position < 0 ? -1 : Math.floor(position / scale);
  };
  const inSymbol = (module: number): boolean => module >= 0 && module < symbolModules;
  const png = encodeBilevelPng(
    imageSize,
    imageSize,
    (y) => (inSymbol(moduleAt(y)) ? moduleAt(y) : -1),
    (x, y) => {
      const column = moduleAt(x);
      const row = moduleAt(y);
      return inSymbol(column) && inSymbol(row) && modules.get(row, column) === 1;
    },
  );
  return { png, pixelsPerModule: scale, svg: codeSvg(layout, imageSize, null, null) };
}

/**
 * Decodes the PNG bytes just rendered and checks they read back the exact link.
 * The decoder works on a copy sampled once per module (the sampling grid has the
 * module's period, so each module yields exactly one pixel): as reliable as the full
 * image for a pixel-perfect code, and fast at 2000 px. Other sampling steps alias.
 */
function assertReadsBack(png: Buffer, expected: string, pixelsPerModule: number): void {
  const decoded = decodeBilevelPng(png);
  const step = pixelsPerModule;
  const width = Math.floor(decoded.width / step);
  const height = Math.floor(decoded.height / step);
  const sample = new Uint8ClampedArray(width * height * 4).fill(255);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (decoded.isDark(x * step + (step >> 1), y * step + (step >> 1))) {
        sample.fill(0, (y * width + x) * 4, (y * width + x) * 4 + 3);
      }
    }
  }
  const result = jsQR(sample, width, height, { inversionAttempts: 'dontInvert' });
  if (result?.data !== expected) {
    throw new BadUserInputError(
      'imageSize',
      `imageSize ${decoded.width} is too small for this ref: the rendered code does not scan reliably`,
    );
  }
}
