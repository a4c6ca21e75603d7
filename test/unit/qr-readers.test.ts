import QRCode from 'qrcode';
import sharp from 'sharp';
import { mMeLink } from '../../src/codes/m-me-link';
import { firstMisreading, readCopies, type PixelImage, type Readings } from '../../src/codes/qr-readers';

/**
 * The read-back check of styled codes (src/codes/qr-readers.ts) on images drawn here, without a
 * server: a code is accepted only when jsQR and ZXing-C++ both read it, on the image itself and
 * on the blurred "phone copy". Each refusal below is one that a check with a decoder or a copy
 * fewer would have let through. The images are deterministic (and the decoders pinned), so the
 * readings are exact; the values were chosen in the middle of the range where they hold.
 */

const LINK = mMeLink('1234567890', 'table-12');
type Rgb = [number, number, number];
const BLACK: Rgb = [0, 0, 0];
const WHITE: Rgb = [255, 255, 255];

/** The link as a QR code (error correction H, as the gateway draws it), 4 modules of quiet zone a side. */
function drawCode(pixelsPerModule: number, foreground: Rgb = BLACK, background: Rgb = WHITE): PixelImage {
  const { modules } = QRCode.create(LINK, { errorCorrectionLevel: 'H' });
  const side = (modules.size + 8) * pixelsPerModule;
  const pixels = Buffer.alloc(side * side * 3);
  for (let row = -4; row < modules.size + 4; row++) {
    // One line of pixels per row of modules, copied down the module's height.
    const line = Buffer.alloc(side * 3);
    for (let x = 0; x < side; x++) {
      const column = Math.floor(x / pixelsPerModule) - 4;
      const dark = row >= 0 && column >= 0 && row < modules.size && column < modules.size && modules.get(row, column) === 1;
      line.set(dark ? foreground : background, x * 3);
    }
    for (let y = (row + 4) * pixelsPerModule; y < (row + 5) * pixelsPerModule; y++) line.copy(pixels, y * side * 3);
  }
  return { pixels, width: side, height: side, channels: 3, pixelsPerModule };
}

/** The image out of focus: a Gaussian blur of σ = `modules` modules (a soft print, a photo of one). */
async function blurred(image: PixelImage, modules: number): Promise<PixelImage> {
  const pixels = await sharp(image.pixels, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .blur(modules * image.pixelsPerModule)
    .raw()
    .toBuffer();
  return { ...image, pixels };
}

const PHONE = 'on a blurred, downscaled copy (as a phone photographs a print)';

/**
 * zxing-wasm fetches its .wasm from a CDN unless it is handed the bytes: in this file every
 * fetch fails (and is recorded), so each reading by ZXing-C++ below comes from node_modules.
 */
const realFetch = globalThis.fetch;
const fetched: string[] = [];
beforeAll(() => {
  globalThis.fetch = (async (input: string | URL | Request) => {
    fetched.push(String(input instanceof Request ? input.url : input));
    throw new Error('no network in qr-readers.test.ts');
  }) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
});
afterEach(() => {
  expect(fetched.splice(0)).toEqual([]);
});

describe('readCopies', () => {
  it.each([2, 4, 10, 27])('reads a plain code at %i pixels per module on all four copies', async (pixelsPerModule) => {
    const readings = await readCopies(drawCode(pixelsPerModule));
    expect(readings).toEqual({ jsqr: LINK, zxing: LINK, jsqrPhone: LINK, zxingPhone: LINK });
    expect(firstMisreading(readings, LINK)).toBeNull();
  });

  // The two decoders make grey out of colour and threshold it differently: some colours read
  // for one of them only. Either decoder alone would have accepted one of these two codes.
  it('refuses a code only ZXing-C++ reads: grey #919191 on white (contrast 3.1:1, above the 3:1 floor)', async () => {
    const readings = await readCopies(drawCode(8, [145, 145, 145]));
    expect(readings).toEqual({ jsqr: null, zxing: LINK, jsqrPhone: null, zxingPhone: LINK });
    expect(firstMisreading(readings, LINK)).toBe('jsQR could not read it');
  });

  it('refuses a code only jsQR reads: red on green (#FF0000 on #009B00)', async () => {
    const readings = await readCopies(drawCode(8, [255, 0, 0], [0, 155, 0]));
    expect(readings).toEqual({ jsqr: LINK, zxing: null, jsqrPhone: null, zxingPhone: null });
    expect(firstMisreading(readings, LINK)).toBe('ZXing could not read it');
  });

  // Both decoders read these on the image itself: only the phone copy refuses them.
  it('refuses a soft code (blurred by 0.4 module) that both read sharp but jsQR not on the phone copy', async () => {
    const soft = await blurred(drawCode(8), 0.4);
    const readings = await readCopies(soft);
    expect(readings).toEqual({ jsqr: LINK, zxing: LINK, jsqrPhone: null, zxingPhone: LINK });
    expect(firstMisreading(readings, LINK)).toBe(`jsQR ${PHONE} could not read it`);
    // The same code a little sharper passes: what refused it was the phone copy's blur.
    expect(firstMisreading(await readCopies(await blurred(drawCode(8), 0.3)), LINK)).toBeNull();
  });

  it('refuses a code that both read at 27 pixels per module and neither on the phone copy: red on green (#FF0000 on #00A500)', async () => {
    const readings = await readCopies(drawCode(27, [255, 0, 0], [0, 165, 0]));
    expect(readings).toEqual({ jsqr: LINK, zxing: LINK, jsqrPhone: null, zxingPhone: null });
    expect(firstMisreading(readings, LINK)).toBe(`jsQR ${PHONE} could not read it`);
  });

  it('loads ZXing-C++ from node_modules: a fresh copy of the module reads with every fetch failing', async () => {
    await jest.isolateModulesAsync(async () => {
      const fresh = jest.requireActual<{ readCopies: typeof readCopies }>('../../src/codes/qr-readers');
      expect((await fresh.readCopies(drawCode(4))).zxing).toBe(LINK);
    });
    expect(fetched).toEqual([]);
  });
});

describe('firstMisreading', () => {
  const all = (text: string | null): Readings => ({ jsqr: text, zxing: text, jsqrPhone: text, zxingPhone: text });
  const cases: [keyof Readings, string][] = [
    ['jsqr', 'jsQR'],
    ['zxing', 'ZXing'],
    ['jsqrPhone', `jsQR ${PHONE}`],
    ['zxingPhone', `ZXing ${PHONE}`],
  ];

  it('accepts only four readings of the expected text', () => {
    expect(firstMisreading(all(LINK), LINK)).toBeNull();
    expect(firstMisreading(all(LINK), `${LINK}3`)).toBe('jsQR read something else');
  });

  it.each(cases)('refuses when %s alone misses or misreads, naming it', (key, name) => {
    expect(firstMisreading({ ...all(LINK), [key]: null }, LINK)).toBe(`${name} could not read it`);
    expect(firstMisreading({ ...all(LINK), [key]: mMeLink('1234567890', 'table-13') }, LINK)).toBe(`${name} read something else`);
    // Exactly the link: not a prefix of it, not with a byte more.
    expect(firstMisreading({ ...all(LINK), [key]: LINK.slice(0, -1) }, LINK)).toBe(`${name} read something else`);
    expect(firstMisreading({ ...all(LINK), [key]: `${LINK} ` }, LINK)).toBe(`${name} read something else`);
  });

  it('names the first of several misreadings, the image itself before the phone copy', () => {
    expect(firstMisreading({ jsqr: LINK, zxing: null, jsqrPhone: null, zxingPhone: 'x' }, LINK)).toBe('ZXing could not read it');
    expect(firstMisreading({ jsqr: LINK, zxing: LINK, jsqrPhone: LINK, zxingPhone: null }, LINK)).toBe(`ZXing ${PHONE} could not read it`);
  });
});
