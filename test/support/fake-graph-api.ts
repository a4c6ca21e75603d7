import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { PNG } from 'pngjs';

/**
 * A real HTTP server on 127.0.0.1 that imitates the Messenger Code endpoint
 * (`POST /{version}/me/messenger_codes`) and the CDN serving the images it hands out.
 *
 * Each call to messenger_codes consumes one scripted behaviour (`enqueue`); with the queue empty
 * the call succeeds. Image behaviours answer the call successfully and shape how the returned
 * `uri` behaves; `hostImage` serves such an image directly, for tests of the downloader alone.
 */

/** Behaviours of the image behind the returned `uri`. */
export type FakeImageBehaviour =
  /** a real PNG (or JPEG) of image_size × image_size */
  | { kind: 'success'; format?: 'png' | 'jpeg' }
  /** works once, then 404 forever, like an expiring CDN link */
  | { kind: 'imageOnce' }
  /** HTML labelled image/png: only a check of the bytes catches it */
  | { kind: 'nonImage' }
  /** `bytes` bytes starting with a PNG signature; without Content-Length when omitContentLength */
  | { kind: 'oversizedImage'; bytes: number; omitContentLength?: boolean }
  /** `hops` (default 1) 302s on 127.0.0.1, ending at a good PNG */
  | { kind: 'redirectToAllowedHost'; hops?: number }
  /** 302 to http://localhost:PORT/…: the same server under a host name that is not allowed */
  | { kind: 'redirectToDisallowedHost' }
  /** sends the headers and the PNG signature, then nothing until the client gives up */
  | { kind: 'stalledImage' }
  /** answers this status with a short text body */
  | { kind: 'imageStatus'; status: number }
  /** a real PNG of `size` × `size`, whatever size was asked for */
  | { kind: 'imageOfSize'; size: number }
  /** a PNG header claiming `width` × `height` (a decompression bomb), with a little data */
  | { kind: 'claimedDimensions'; width: number; height: number };

/** Behaviours of the messenger_codes call itself. */
export type FakeGraphCallBehaviour =
  /** a Graph error body; fbtrace_id is always set, status defaults to 400 */
  | { kind: 'graphError'; code: number; type?: string; subcode?: number; status?: number; message?: string }
  /** 500 with a plain-text body, no Graph error */
  | { kind: 'http500' }
  /** 200 whose JSON is cut off */
  | { kind: 'malformedJson' }
  /** succeeds after delayMs, if the client still waits */
  | { kind: 'slow'; delayMs: number }
  /** 200 with a JSON answer of `bytes` bytes, streamed without Content-Length */
  | { kind: 'hugeAnswer'; bytes: number };

export type FakeGraphBehaviour = FakeImageBehaviour | FakeGraphCallBehaviour;

export interface RecordedGraphRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** parsed JSON, or the raw text when it was not JSON */
  body: unknown;
}

type ImageRoute =
  | { kind: 'file'; body: Buffer; contentType: string; servesLeft: number; omitContentLength: boolean }
  | { kind: 'redirect'; location: string }
  | { kind: 'status'; status: number }
  | { kind: 'stall' };

const MESSENGER_CODES_PATH = /^(?:\/v\d+\.\d+)?\/me\/messenger_codes$/;
const IMAGE_PATH_PREFIX = '/images/';
/** The rules the real endpoint applied: size 100–2000 and a ref of at most 250 of these characters. */
const REF_PATTERN = /^[a-zA-Z0-9+/=\-.:_]{1,250}$/;
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const DEFAULT_IMAGE_SIZE = 1000;
const GRAPH_ERROR_TEXT: Record<number, string> = {
  1: 'An unknown error occurred',
  2: 'Service temporarily unavailable',
  4: 'Application request limit reached',
  10: 'Application does not have permission for this action',
  17: 'User request limit reached',
  32: 'Page request limit reached',
  100: 'Invalid parameter',
  190: 'Invalid OAuth access token.',
  200: 'Permissions error',
  341: 'Application limit reached',
  613: 'Calls to this api have exceeded the rate limit.',
};

export class FakeGraphApi {
  /** Calls to messenger_codes, in order. */
  readonly requests: RecordedGraphRequest[] = [];
  /** Requests for images, redirect hops included. */
  imageRequests = 0;

  private readonly queue: FakeGraphBehaviour[] = [];
  private readonly images = new Map<string, ImageRoute>();
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly renderedImages = new Map<string, Buffer>();
  private nextImageId = 1;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** `http://127.0.0.1:PORT`, the value for GRAPH_API_URL. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<FakeGraphApi> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeGraphApi(server, (server.address() as AddressInfo).port);
    server.on('connection', (socket) => {
      fake.sockets.add(socket);
      socket.once('close', () => fake.sockets.delete(socket));
    });
    server.on('request', (req, res) => fake.handle(req, res));
    return fake;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    // Keep-alive and stalled connections would otherwise hold close() (and jest) open.
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Scripts the next messenger_codes calls, one behaviour per call. */
  enqueue(...behaviours: FakeGraphBehaviour[]): void {
    this.queue.push(...behaviours);
  }

  /** Forgets scripted behaviours and recorded requests, for reuse across tests. */
  reset(): void {
    this.queue.length = 0;
    this.requests.length = 0;
    this.imageRequests = 0;
  }

  /** Serves an image that behaves as told and returns its absolute URL on 127.0.0.1. */
  hostImage(behaviour: FakeImageBehaviour, imageSize = DEFAULT_IMAGE_SIZE): string {
    switch (behaviour.kind) {
      case 'success':
        return this.addImage(this.codeImageFile(imageSize, behaviour.format ?? 'png'));
      case 'imageOnce':
        return this.addImage({ ...this.codeImageFile(imageSize, 'png'), servesLeft: 1 });
      case 'nonImage':
        return this.addImage(file(Buffer.from('<!doctype html><html><body>Not an image</body></html>'), 'image/png'));
      case 'oversizedImage': {
        const body = Buffer.alloc(behaviour.bytes);
        PNG_SIGNATURE.copy(body);
        return this.addImage({ ...file(body, 'image/png'), omitContentLength: behaviour.omitContentLength ?? false });
      }
      case 'redirectToAllowedHost': {
        let location = this.hostImage({ kind: 'success' }, imageSize);
        for (let hop = 0; hop < (behaviour.hops ?? 1); hop++) {
          location = this.addImage({ kind: 'redirect', location });
        }
        return location;
      }
      case 'redirectToDisallowedHost': {
        const target = new URL(this.hostImage({ kind: 'success' }, imageSize));
        target.hostname = 'localhost';
        return this.addImage({ kind: 'redirect', location: target.toString() });
      }
      case 'stalledImage':
        return this.addImage({ kind: 'stall' });
      case 'imageStatus':
        return this.addImage({ kind: 'status', status: behaviour.status });
      case 'imageOfSize':
        return this.addImage(this.codeImageFile(behaviour.size, 'png'));
      case 'claimedDimensions': {
        // A genuine PNG whose IHDR says otherwise (its CRC made to match, as a bomb's would be).
        const png = Buffer.from(renderPng(100));
        png.writeUInt32BE(behaviour.width, 16);
        png.writeUInt32BE(behaviour.height, 20);
        png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
        return this.addImage(file(png, 'image/png'));
      }
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', this.url);
    if (url.pathname.startsWith(IMAGE_PATH_PREFIX)) {
      this.serveImage(url.pathname, res);
    } else if (MESSENGER_CODES_PATH.test(url.pathname)) {
      void this.handleMessengerCodes(req, url, res);
    } else {
      sendGraphError(res, 400, { code: 2500, message: `Unknown path components: ${url.pathname}` });
    }
  }

  private async handleMessengerCodes(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const text = await readText(req);
    const body = parseJsonOrText(text);
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body,
    });

    // Malformed calls are refused before any scripted behaviour is spent, as the real API would.
    if (req.method !== 'POST') {
      sendGraphError(res, 400, { code: 100, message: `Unsupported ${req.method?.toLowerCase()} request.` });
      return;
    }
    if (!url.searchParams.get('access_token')) {
      sendGraphError(res, 400, { code: 190, message: 'An active access token must be used to query this endpoint.' });
      return;
    }
    const invalid = invalidParameter(body);
    if (invalid) {
      sendGraphError(res, 400, { code: 100, message: `(#100) ${invalid}` });
      return;
    }
    const imageSize = readImageSize(body);
    const behaviour = this.queue.shift() ?? { kind: 'success' };

    switch (behaviour.kind) {
      case 'graphError':
        sendGraphError(res, behaviour.status ?? 400, {
          code: behaviour.code,
          type: behaviour.type,
          subcode: behaviour.subcode,
          message: behaviour.message,
        });
        return;
      case 'http500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
        return;
      case 'hugeAnswer': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"uri":"');
        const chunk = Buffer.alloc(64 * 1024, 'a');
        let sent = 0;
        // Written as the client reads: a client that stops reading stops the writing.
        const pump = () => {
          while (sent < behaviour.bytes && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          if (!res.destroyed) res.end('"}');
        };
        res.once('close', () => res.removeAllListeners('drain'));
        pump();
        return;
      }
      case 'malformedJson':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"uri": "http://127.0.0.1/images/');
        return;
      case 'slow': {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          if (!res.destroyed) sendJson(res, 200, { uri: this.hostImage({ kind: 'success' }, imageSize) });
        }, behaviour.delayMs);
        this.timers.add(timer);
        // A client that gave up gets nothing: its socket closed, so the timer is dropped.
        res.once('close', () => {
          clearTimeout(timer);
          this.timers.delete(timer);
        });
        return;
      }
      default:
        sendJson(res, 200, { uri: this.hostImage(behaviour, imageSize) });
    }
  }

  private serveImage(pathname: string, res: ServerResponse): void {
    this.imageRequests++;
    const route = this.images.get(pathname);
    if (route === undefined || (route.kind === 'file' && route.servesLeft <= 0)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('URL signature expired');
      return;
    }
    switch (route.kind) {
      case 'file': {
        route.servesLeft--;
        if (route.omitContentLength) {
          // Several writes without a length make Node send the body chunked.
          res.writeHead(200, { 'content-type': route.contentType });
          const chunkSize = 64 * 1024;
          for (let start = 0; start < route.body.length; start += chunkSize) {
            res.write(route.body.subarray(start, start + chunkSize));
          }
          res.end();
        } else {
          res.writeHead(200, { 'content-type': route.contentType, 'content-length': route.body.length });
          res.end(route.body);
        }
        return;
      }
      case 'redirect':
        res.writeHead(302, { location: route.location }).end();
        return;
      case 'status':
        res.writeHead(route.status, { 'content-type': 'text/plain' }).end(`HTTP ${route.status}`);
        return;
      case 'stall':
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': 100_000 });
        res.write(PNG_SIGNATURE);
        return;
    }
  }

  private addImage(route: ImageRoute): string {
    const pathname = `${IMAGE_PATH_PREFIX}${this.nextImageId++}`;
    this.images.set(pathname, route);
    // Real CDN links carry a signature and an expiry; a query string keeps clients honest about that.
    return `${this.url}${pathname}?oh=${randomBytes(8).toString('hex')}&oe=${Date.now().toString(16)}`;
  }

  private codeImageFile(size: number, format: 'png' | 'jpeg'): ImageRoute & { kind: 'file' } {
    const key = `${format}:${size}`;
    let body = this.renderedImages.get(key);
    if (body === undefined) {
      body = format === 'png' ? renderPng(size) : renderGrayJpeg(size, size);
      this.renderedImages.set(key, body);
    }
    return file(body, format === 'png' ? 'image/png' : 'image/jpeg');
  }
}

function file(body: Buffer, contentType: string): ImageRoute & { kind: 'file' } {
  return { kind: 'file', body, contentType, servesLeft: Number.POSITIVE_INFINITY, omitContentLength: false };
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' }).end(JSON.stringify(value));
}

function sendGraphError(
  res: ServerResponse,
  status: number,
  error: { code: number; type?: string; subcode?: number; message?: string },
): void {
  const fallbackText = GRAPH_ERROR_TEXT[error.code] ?? 'An error occurred';
  sendJson(res, status, {
    error: {
      message: error.message ?? (error.code === 190 ? fallbackText : `(#${error.code}) ${fallbackText}`),
      type: error.type ?? 'OAuthException',
      code: error.code,
      ...(error.subcode === undefined ? {} : { error_subcode: error.subcode }),
      fbtrace_id: `A${randomBytes(8).toString('base64url')}`,
    },
  });
}

/** What the real endpoint would refuse with error 100, or null when the body is acceptable. */
function invalidParameter(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'The request body must be a JSON object';
  const fields = body as Record<string, unknown>;
  if (fields.type !== 'standard') return 'Param type must be one of {standard}';
  const size = fields.image_size;
  if (size !== undefined && (!Number.isInteger(size) || (size as number) < 100 || (size as number) > 2000)) {
    return 'Param image_size must be a number between 100 and 2000';
  }
  if (fields.data !== undefined) {
    const data = fields.data as Record<string, unknown> | null;
    if (typeof data !== 'object' || data === null || typeof data.ref !== 'string' || !REF_PATTERN.test(data.ref)) {
      return 'Param data[ref] must be at most 250 of a-z A-Z 0-9 + / = - . : _';
    }
  }
  return null;
}

function readImageSize(body: unknown): number {
  const size = (body as { image_size?: unknown }).image_size;
  return typeof size === 'number' ? size : DEFAULT_IMAGE_SIZE;
}

async function readText(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** A white square with a black frame and centre block: looks like a code, compresses to almost nothing. */
export function renderPng(size: number): Buffer {
  // One grey byte per pixel and no row filters: pngjs is ~1000 times faster so under jest than with RGBA
  // input and adaptive filtering, which matters because the fake runs in the test's own event loop.
  const grey = Buffer.alloc(size * size, 255);
  const frame = Math.max(1, Math.floor(size / 10));
  const centreStart = Math.floor(size / 2 - frame / 2);
  for (let y = 0; y < size; y++) {
    const row = y * size;
    if (y < frame || y >= size - frame) {
      grey.fill(0, row, row + size);
      continue;
    }
    grey.fill(0, row, row + frame);
    grey.fill(0, row + size - frame, row + size);
    if (y >= centreStart && y < centreStart + frame) grey.fill(0, row + centreStart, row + centreStart + frame);
  }
  const greyInput = { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 } as const;
  const png = new PNG({ width: size, height: size, ...greyInput });
  png.data = grey;
  return PNG.sync.write(png, { ...greyInput, filterType: 0 });
}

/**
 * A baseline JPEG of a uniformly grey image, written by hand since no JPEG encoder is installed.
 * One 8-bit component, all quantisation steps 1, and Huffman tables holding one symbol each:
 * DC difference category 0 and AC end-of-block, both coded as the single bit 0. Every 8×8 block
 * is therefore the two bits 00, and decoders render level 128 everywhere.
 */
export function renderGrayJpeg(width: number, height: number): Buffer {
  const segment = (marker: number, payload: number[]): number[] => [
    0xff,
    marker,
    (payload.length + 2) >> 8,
    (payload.length + 2) & 0xff,
    ...payload,
  ];
  const oneSymbolTable = (tableClassAndId: number): number[] => [
    tableClassAndId,
    1, // one code of length 1
    ...new Array<number>(15).fill(0),
    0x00, // the symbol: DC category 0 for the DC table, end-of-block for the AC table
  ];
  const blocks = Math.ceil(width / 8) * Math.ceil(height / 8);
  const scanBytes = Buffer.alloc(Math.ceil((blocks * 2) / 8));
  const paddingBits = scanBytes.length * 8 - blocks * 2;
  // The last byte is padded with 1 bits, as the standard asks; fewer than 8 of them, so it is never 0xFF.
  if (paddingBits > 0) scanBytes[scanBytes.length - 1] = (1 << paddingBits) - 1;

  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    Buffer.from(segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0x00, 1, 1, 0, 0, 1, 0, 1, 0, 0])),
    Buffer.from(segment(0xdb, [0x00, ...new Array<number>(64).fill(1)])),
    Buffer.from(segment(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0])),
    Buffer.from(segment(0xc4, oneSymbolTable(0x00))),
    Buffer.from(segment(0xc4, oneSymbolTable(0x10))),
    Buffer.from(segment(0xda, [1, 1, 0x00, 0, 63, 0])),
    scanBytes,
    Buffer.from([0xff, 0xd9]),
  ]);
}
