import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import QRCode from 'qrcode';
import sharp from 'sharp';
import { mMeLink } from '../src/codes/m-me-link';
import { RegisterPageDocument, RemovePageDocument } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { FakeGraphApi, type FakeImageBehaviour } from './support/fake-graph-api';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { execute, executeOk, type GraphQLResponse } from './support/graphql-client';
import { readOneQr, readQr } from './support/qr';
import { readWithZbar } from './support/zbar';

reportSkippedDatabases();

interface CodeFields {
  id: string;
  ref: string | null;
  provider: string;
  imageSize: number;
  imageUrl: string;
  svgUrl: string | null;
  link: string;
}
const CODE_FIELDS = 'id ref provider imageSize imageUrl svgUrl link';

type Variables = { input: Record<string, unknown> };
const GENERATE_CODE = parse(
  `mutation ($input: GenerateCodeInput!) { generateCode(input: $input) { ${CODE_FIELDS} } }`,
) as TypedDocumentNode<{ generateCode: CodeFields }, Variables>;
const GENERATE_CODES = parse(
  `mutation ($input: GenerateCodesInput!) { generateCodes(input: $input) { ${CODE_FIELDS} } }`,
) as TypedDocumentNode<{ generateCodes: CodeFields[] }, Variables>;

const FOREGROUND = '#1A237E';
const BACKGROUND = '#FFF8E1';

/** A small brand logo: a red disc with a white triangle ("play"), on transparency. */
async function logoPng(side = 256): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}" viewBox="0 0 10 10">
    <circle cx="5" cy="5" r="4.6" fill="#E53935"/><path d="M4 3.2 L7.2 5 L4 6.8 Z" fill="#FFFFFF"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** A logo as hard on decoders as logos get: dark detail everywhere (see scripts/center-image-limits.ts). */
async function checkerPng(side = 300): Promise<Buffer> {
  const cells = 6;
  const rects: string[] = [];
  for (let y = 0; y < cells; y++)
    for (let x = 0; x < cells; x++) if ((x + y) % 2 === 0) rects.push(`<rect x="${x}" y="${y}" width="1" height="1"/>`);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}" viewBox="0 0 ${cells} ${cells}"><rect width="6" height="6" fill="#DDDDDD"/><g fill="#202040">${rects.join('')}</g></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

async function fetchBytes(url: string): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

/** The colour of a pixel of a PNG or JPEG, as #RRGGBB. */
async function colourAt(image: Buffer, x: number, y: number): Promise<string> {
  const { data } = await sharp(image)
    .extract({ left: x, top: y, width: 1, height: 1 })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return `#${[...data.subarray(0, 3)].map((value) => value.toString(16).padStart(2, '0')).join('')}`.toUpperCase();
}

/**
 * Three readers: ZBar (C, independent of both decoders the gateway checks with), ZXing-C++ on
 * every pixel (the gateway reads reduced copies), and ZXing's JavaScript port (@zxing/library)
 * on a copy halved by averaging: at full resolution the port's detector missed the 600 px code
 * with a center image of 0.25 that ZBar, ZXing-C++ and jsQR read (README, "Branded codes").
 */
async function readEveryWay(png: Buffer): Promise<string[]> {
  return [...(await readWithZbar(png)), await readOneQr(png), readQr(png, 2)];
}

function fieldOf<T>(result: GraphQLResponse<T>): unknown {
  expect(result.data ?? null).toBeNull();
  expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  return result.errors?.[0]?.extensions?.field;
}

async function rowsOf(gateway: TestGateway, table: 'code_style' | 'code_vector'): Promise<number> {
  const rows: { n: number | string }[] = await gateway.db.dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`);
  return Number(rows[0].n);
}

/** Codes, images, styles and SVGs stored. */
async function stored(gateway: TestGateway): Promise<number[]> {
  return [
    await countRows(gateway, 'code'),
    await countRows(gateway, 'code_image'),
    await rowsOf(gateway, 'code_style'),
    await rowsOf(gateway, 'code_vector'),
  ];
}

describe.each(DATABASE_KINDS)('styled LOCAL codes on %s', (kind) => {
  let gateway: TestGateway;
  let logo: string;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
    logo = (await logoPng()).toString('base64');
  });

  const generate = (input: Record<string, unknown>) => execute(gateway.url, GENERATE_CODE, { input });
  const generateMany = (input: Record<string, unknown>) => execute(gateway.url, GENERATE_CODES, { input });
  async function generateOk(input: Record<string, unknown>): Promise<CodeFields> {
    const result = await generate(input);
    expect(result.errors).toBeUndefined();
    return (result.data as { generateCode: CodeFields }).generateCode;
  }

  it('draws colours and a center image that independent decoders read back, as PNG and as SVG', async () => {
    const code = await generateOk({
      data: { ref: 'branded-1' },
      imageSize: 600,
      style: { centerImage: logo, centerImageSize: 0.25, foreground: FOREGROUND, background: BACKGROUND },
    });
    const link = mMeLink(TEST_PAGE_ID, 'branded-1');
    expect(code).toMatchObject({ provider: 'LOCAL', imageSize: 600, link });

    const png = await fetchBytes(code.imageUrl);
    expect(png.status).toBe(200);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect(await readEveryWay(png.bytes)).toEqual([link, link, link]);
    const { width, height } = await sharp(png.bytes).metadata();
    expect([width, height]).toEqual([600, 600]);
    // The quiet zone is background; the middle of the image is the logo's red disc.
    expect(await colourAt(png.bytes, 2, 2)).toBe(BACKGROUND);
    expect(await colourAt(png.bytes, 300, 270)).toBe('#E53935');

    expect(code.svgUrl).toMatch(/\/images\/[0-9a-f-]{36}$/);
    const svg = await fetchBytes(code.svgUrl as string);
    expect(svg.status).toBe(200);
    expect(svg.headers.get('content-type')).toBe('image/svg+xml');
    expect(svg.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(svg.headers.get('content-security-policy')).toContain("default-src 'none'");
    const text = svg.bytes.toString('utf8');
    expect(text).toContain(`fill="${FOREGROUND}"`);
    expect(text).toContain(`fill="${BACKGROUND}"`);
    expect(text).toContain('href="data:image/png;base64,');
    expect(text).not.toMatch(/<script/i);
    // Rasterised by librsvg (through sharp) at another size, modules no longer whole pixels: the vectors scan too.
    // (@zxing/library's detector misjudges the size of such modules even on plain codes, so ZBar and ZXing-C++ read it.)
    const rasterised = await sharp(svg.bytes, { density: 150 }).resize(800, 800).flatten({ background: '#FFFFFF' }).png().toBuffer();
    expect([...(await readWithZbar(rasterised)), await readOneQr(rasterised)]).toEqual([link, link]);
    const again = await fetch(code.svgUrl as string, { headers: { 'if-none-match': svg.headers.get('etag') as string } });
    expect(again.status).toBe(304);
  });

  it('takes a JPEG center image and colours alone', async () => {
    const jpeg = await sharp(await logoPng())
      .flatten({ background: '#FFFFFF' })
      .jpeg()
      .toBuffer();
    const withJpeg = await generateOk({ data: { ref: 'branded-jpeg' }, imageSize: 500, style: { centerImage: jpeg.toString('base64') } });
    expect(await readEveryWay((await fetchBytes(withJpeg.imageUrl)).bytes)).toEqual(Array(3).fill(mMeLink(TEST_PAGE_ID, 'branded-jpeg')));
    expect((await fetchBytes(withJpeg.svgUrl as string)).bytes.toString('utf8')).toContain('href="data:image/jpeg;base64,');

    const coloured = await generateOk({ data: { ref: 'branded-colours' }, imageSize: 400, style: { foreground: '#0B5D1E' } });
    const png = (await fetchBytes(coloured.imageUrl)).bytes;
    expect(await readEveryWay(png)).toEqual(Array(3).fill(mMeLink(TEST_PAGE_ID, 'branded-colours')));
    const rasterised = await sharp((await fetchBytes(coloured.svgUrl as string)).bytes)
      .resize(500, 500)
      .png()
      .toBuffer();
    expect([...(await readWithZbar(rasterised)), await readOneQr(rasterised)]).toEqual(
      Array(2).fill(mMeLink(TEST_PAGE_ID, 'branded-colours')),
    );
  });

  it('keeps a code with its style: the same style or none returns it, each new size drawn alike; another style is refused', async () => {
    const style = { centerImage: logo, foreground: FOREGROUND, background: BACKGROUND };
    const first = await generateOk({ data: { ref: 'kept-style' }, imageSize: 400, style });
    const same = await generateOk({ data: { ref: 'kept-style' }, imageSize: 400, style });
    expect(same.id).toBe(first.id);
    expect(same.imageUrl).toBe(first.imageUrl);

    // Without style, a new size: the same code, drawn with its own style.
    const larger = await generateOk({ data: { ref: 'kept-style' }, imageSize: 700 });
    expect(larger).toMatchObject({ id: first.id, imageSize: 700, svgUrl: first.svgUrl });
    const png = (await fetchBytes(larger.imageUrl)).bytes;
    expect(await readEveryWay(png)).toEqual(Array(3).fill(mMeLink(TEST_PAGE_ID, 'kept-style')));
    expect(await colourAt(png, 1, 1)).toBe(BACKGROUND);
    expect(await colourAt(png, 350, 320)).toBe('#E53935');

    const before = await stored(gateway);
    const other = await generate({ data: { ref: 'kept-style' }, imageSize: 800, style: { ...style, foreground: '#000000' } });
    expect(fieldOf(other)).toBe('style');
    expect(other.errors?.[0]?.message).toMatch(/style is chosen when it is created/);
    // A plain code asked for with a style: refused too (style: {} asks for the plain code).
    await generateOk({ data: { ref: 'kept-plain' }, imageSize: 300 });
    const plainBefore = await stored(gateway);
    expect(fieldOf(await generate({ data: { ref: 'kept-plain' }, imageSize: 400, style }))).toBe('style');
    expect((await generateOk({ data: { ref: 'kept-plain' }, imageSize: 300, style: {} })).ref).toBe('kept-plain');
    expect(await stored(gateway)).toEqual(plainBefore);
    expect(plainBefore).toEqual([before[0] + 1, before[1] + 1, before[2], before[3] + 1]);
  });

  it('styles every code of generateCodes, and refuses a ref that exists with another style by its index', async () => {
    const { data } = await generateMany({
      series: { prefix: 'styled-table-', from: 1, to: 4 },
      imageSize: 400,
      style: { centerImage: logo, foreground: FOREGROUND, background: BACKGROUND },
    });
    const codes = (data as { generateCodes: CodeFields[] }).generateCodes;
    expect(codes.map((code) => code.ref)).toEqual(['styled-table-1', 'styled-table-2', 'styled-table-3', 'styled-table-4']);
    for (const code of codes) {
      const png = (await fetchBytes(code.imageUrl)).bytes;
      expect(await readEveryWay(png)).toEqual(Array(3).fill(mMeLink(TEST_PAGE_ID, code.ref)));
      expect(await colourAt(png, 1, 1)).toBe(BACKGROUND);
      const svg = await sharp((await fetchBytes(code.svgUrl as string)).bytes)
        .resize(600, 600)
        .png()
        .toBuffer();
      expect([...(await readWithZbar(svg)), await readOneQr(svg)]).toEqual(Array(2).fill(mMeLink(TEST_PAGE_ID, code.ref)));
    }

    await generateOk({ data: { ref: 'plain-table' }, imageSize: 400 });
    const before = await stored(gateway);
    const refused = await generateMany({ refs: ['new-table-a', 'plain-table'], imageSize: 400, style: { foreground: FOREGROUND } });
    expect(fieldOf(refused)).toBe('refs[1]');
    expect(await stored(gateway)).toEqual(before);
  });

  it('removes the style and the SVG with their page', async () => {
    const pageId = '7100000000001';
    await executeOk(gateway.url, RegisterPageDocument, { input: { id: pageId } });
    const code = await generateOk({
      pageId,
      data: { ref: 'doomed' },
      imageSize: 300,
      style: { centerImage: logo, foreground: FOREGROUND },
    });
    expect((await fetchBytes(code.svgUrl as string)).status).toBe(200);
    const before = await stored(gateway);
    await executeOk(gateway.url, RemovePageDocument, { id: pageId });
    expect(await stored(gateway)).toEqual([before[0] - 1, before[1] - 1, before[2] - 1, before[3] - 1]);
    expect((await fetchBytes(code.svgUrl as string)).status).toBe(404);
  });

  describe('refusals: the field named, nothing stored', () => {
    const cases: [string, () => Promise<Record<string, unknown>>, string][] = [
      ['too little contrast', async () => ({ foreground: '#8A8A8A' }), 'style.foreground'],
      ['too little contrast, only the background given', async () => ({ background: '#3A3A3A' }), 'style.background'],
      ['light modules on a dark ground', async () => ({ foreground: '#FFFFFF', background: '#000000' }), 'style.foreground'],
      ['a colour that is not #RRGGBB', async () => ({ background: 'white' }), 'style.background'],
      ['a foreground that is not #RRGGBB', async () => ({ foreground: '#12345' }), 'style.foreground'],
      [
        'a GIF',
        async () => ({ centerImage: Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1').toString('base64') }),
        'style.centerImage',
      ],
      [
        'an SVG',
        async () => ({ centerImage: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64') }),
        'style.centerImage',
      ],
      ['a PNG cut short', async () => ({ centerImage: (await logoPng()).subarray(0, 200).toString('base64') }), 'style.centerImage'],
      ['text that is not base64', async () => ({ centerImage: 'this is not base64!' }), 'style.centerImage'],
      [
        'a center image that breaks decoding',
        async () => ({ centerImage: (await checkerPng()).toString('base64'), centerImageSize: 0.5 }),
        'style.centerImage',
      ],
      [
        'a center image size out of range',
        async () => ({ centerImage: (await logoPng()).toString('base64'), centerImageSize: 0.8 }),
        'style.centerImageSize',
      ],
    ];

    it.each(cases)('%s', async (_name, style, field) => {
      const before = await stored(gateway);
      const one = await generate({ data: { ref: 'refused-one' }, imageSize: 500, style: await style() });
      expect(fieldOf(one)).toBe(field);
      const many = await generateMany({ refs: ['refused-a', 'refused-b'], imageSize: 500, style: await style() });
      expect(fieldOf(many)).toBe(field);
      expect(await stored(gateway)).toEqual(before);
    });

    it('a center image over 1 MiB', async () => {
      // Over HTTP (the body limit is 2 MiB, room for 1 MiB in base64): refused by the style check, on its field.
      const huge = Buffer.alloc(1024 * 1024 + 1);
      const before = await stored(gateway);
      const response = await fetch(`${gateway.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          query: 'mutation ($input: GenerateCodeInput!) { generateCode(input: $input) { id } }',
          variables: { input: { data: { ref: 'refused-huge' }, style: { centerImage: huge.toString('base64') } } },
        }),
      });
      const body = (await response.json()) as { errors?: { message: string; extensions?: Record<string, unknown> }[] };
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'style.centerImage' });
      expect(body.errors?.[0]?.message).toMatch(/at most 1048576 bytes/);
      expect(await stored(gateway)).toEqual(before);
    });
  });
});

/** Serves one image at a time, as a CDN behind the Messenger Code API would. */
async function startImageHost(): Promise<{ server: Server; url: string; host: string; serve: (bytes: Buffer) => void }> {
  let current: Buffer = Buffer.alloc(0);
  const server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': current.length }).end(current);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/code.png`, host: `127.0.0.1:${port}`, serve: (bytes) => (current = bytes) };
}

describe.each(DATABASE_KINDS)('styled FACEBOOK codes on %s', (kind) => {
  let fake: FakeGraphApi;
  let imageHost: Awaited<ReturnType<typeof startImageHost>>;
  let gateway: TestGateway;
  /** While set, the Messenger Code API's image is this QR code, served from imageHost. */
  let qrText: string | null = null;

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    imageHost = await startImageHost();
    const hostImage = fake.hostImage.bind(fake);
    fake.hostImage = (behaviour: FakeImageBehaviour, imageSize = 1000) => {
      // While qrText is set, the image is a QR code (see useQrImage), as a gateway serving the Messenger Code API answers.
      return qrText === null ? hostImage(behaviour, imageSize) : imageHost.url;
    };
    gateway = await startTestGateway(kind, {
      CODE_PROVIDER: 'facebook',
      GRAPH_API_URL: fake.url,
      PAGE_ACCESS_TOKEN: 'test-token-styled',
      CODE_IMAGE_HOSTS: imageHost.host,
      GRAPH_API_TIMEOUT_MS: '5000',
    });
  });
  afterAll(async () => {
    await gateway?.stop();
    await fake?.stop();
    await new Promise<void>((resolve) => imageHost.server.close(() => resolve()));
  });

  async function useQrImage(text: string, size: number): Promise<void> {
    qrText = text;
    imageHost.serve(await QRCode.toBuffer(text, { errorCorrectionLevel: 'H', width: size, margin: 4 }));
  }

  it('composites the style on the downloaded image, read back by independent decoders; no SVG', async () => {
    const link = mMeLink(TEST_PAGE_ID, 'fb-branded');
    await useQrImage(link, 600);
    const result = await execute(gateway.url, GENERATE_CODE, {
      input: {
        data: { ref: 'fb-branded' },
        imageSize: 600,
        style: { centerImage: (await logoPng()).toString('base64'), foreground: FOREGROUND, background: BACKGROUND },
      },
    });
    expect(result.errors).toBeUndefined();
    const code = (result.data as { generateCode: CodeFields }).generateCode;
    expect(code).toMatchObject({ provider: 'FACEBOOK', imageSize: 600, svgUrl: null });
    const png = (await fetchBytes(code.imageUrl)).bytes;
    expect(await readEveryWay(png)).toEqual([link, link, link]);
    expect(await colourAt(png, 2, 2)).toBe(BACKGROUND);
    expect(await colourAt(png, 300, 275)).toBe('#E53935');
    expect(fake.requests.at(-1)?.body).toMatchObject({ type: 'standard', image_size: 600, data: { ref: 'fb-branded' } });
  });

  it('refuses a center image that breaks decoding, and a style on an image that is no QR code, storing nothing', async () => {
    await useQrImage(mMeLink(TEST_PAGE_ID, 'fb-too-big'), 500);
    const before = await stored(gateway);
    const tooBig = await execute(gateway.url, GENERATE_CODE, {
      input: {
        data: { ref: 'fb-too-big' },
        imageSize: 500,
        style: { centerImage: (await checkerPng()).toString('base64'), centerImageSize: 0.5 },
      },
    });
    expect(fieldOf(tooBig)).toBe('style.centerImage');

    // The fake's own image is a frame, not a QR code: a genuine Messenger Code cannot be checked either.
    qrText = null;
    const notQr = await execute(gateway.url, GENERATE_CODE, {
      input: { data: { ref: 'fb-not-qr' }, imageSize: 300, style: { foreground: FOREGROUND } },
    });
    expect(fieldOf(notQr)).toBe('style');
    expect(await stored(gateway)).toEqual(before);
  });
});
