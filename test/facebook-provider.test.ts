import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GraphQLError } from 'graphql';
import { PNG } from 'pngjs';
import { FacebookCodeImageProvider, type FacebookProviderOptions } from '../src/codes/providers/facebook.provider';
import { CodeProviderKind } from '../src/images/image.types';
import { UpstreamError, UpstreamUnavailableError } from '../src/errors';
import { downloadImage, isAllowedHost, type DownloadImageOptions } from '../src/images/image-download';
import { sniffImage } from '../src/images/image-sniff';
import { FakeGraphApi, renderGrayJpeg, renderPng } from './support/fake-graph-api';

const TOKEN = 'EAAGsecretPageToken0123456789';

/** Every error a test provoked, checked at the end for the token. */
const provokedErrors: unknown[] = [];

async function rejectionOf(promise: Promise<unknown>): Promise<GraphQLError> {
  try {
    await promise;
  } catch (error) {
    provokedErrors.push(error);
    if (!(error instanceof GraphQLError)) throw error;
    return error;
  }
  throw new Error('expected the promise to reject');
}

function pngOf(width: number, height: number): Buffer {
  return PNG.sync.write(new PNG({ width, height }));
}

/** SOI, the given segments, EOI: enough structure for the sniffer, not a decodable picture. */
function jpegOf(...segments: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8]), ...segments, Buffer.from([0xff, 0xd9])]);
}

function segment(marker: number, payload: number[]): Buffer {
  const length = payload.length + 2;
  return Buffer.from([0xff, marker, length >> 8, length & 0xff, ...payload]);
}

function frameHeader(marker: number, width: number, height: number): Buffer {
  return segment(marker, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, 1, 1, 0x11, 0]);
}

describe('sniffImage', () => {
  it('reads the size of a PNG from its IHDR', () => {
    expect(sniffImage(pngOf(3, 2))).toEqual({ contentType: 'image/png', width: 3, height: 2 });
  });

  it('reads the size of a JPEG from its frame header, past other segments', () => {
    const app0 = segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0]);
    const huffmanTable = segment(0xc4, [0, 1, ...new Array<number>(15).fill(0), 0]);
    expect(sniffImage(jpegOf(app0, huffmanTable, frameHeader(0xc0, 40, 30)))).toEqual({
      contentType: 'image/jpeg',
      width: 40,
      height: 30,
    });
  });

  it('reads progressive JPEGs and skips fill bytes before a marker', () => {
    const filled = Buffer.concat([Buffer.from([0xff, 0xff]), frameHeader(0xc2, 640, 480)]);
    expect(sniffImage(jpegOf(filled))).toEqual({ contentType: 'image/jpeg', width: 640, height: 480 });
  });

  it('reads the JPEG that the fake serves', () => {
    expect(sniffImage(renderGrayJpeg(130, 120))).toEqual({ contentType: 'image/jpeg', width: 130, height: 120 });
  });

  it.each([
    ['empty', Buffer.alloc(0)],
    ['HTML', Buffer.from('<!doctype html><html><body>hi</body></html>')],
    ['a PNG signature alone', pngOf(3, 2).subarray(0, 8)],
    ['a PNG cut inside IHDR', pngOf(3, 2).subarray(0, 20)],
    ['a PNG missing its last byte', pngOf(3, 2).subarray(0, -1)],
    ['a JPEG cut inside its frame header', jpegOf(frameHeader(0xc0, 40, 30)).subarray(0, 9)],
    ['a JPEG without its end marker', renderGrayJpeg(16, 16).subarray(0, -2)],
    ['a JPEG reaching its scan before any frame header', jpegOf(segment(0xda, [1, 1, 0, 0, 63, 0]))],
    ['a JPEG of height 0', jpegOf(frameHeader(0xc0, 40, 0))],
    ['three bytes of JPEG magic', Buffer.from([0xff, 0xd8, 0xff])],
  ])('refuses %s', (_description, bytes) => {
    expect(sniffImage(bytes)).toBeNull();
  });

  it('refuses a PNG whose IHDR checksum does not match', () => {
    const corrupted = Buffer.from(pngOf(3, 2));
    corrupted[19] = 9; // width 3 becomes 9, the CRC stays
    expect(sniffImage(corrupted)).toBeNull();
  });
});

describe('isAllowedHost', () => {
  const allowed = ['fbcdn.net', 'facebook.com', '127.0.0.1'];

  it.each(['fbcdn.net', 'scontent.xx.fbcdn.net', 'SCONTENT.FBCDN.NET', 'fbcdn.net.', 'graph.facebook.com', '127.0.0.1'])(
    'allows %s',
    (hostname) => {
      expect(isAllowedHost(hostname, allowed)).toBe(true);
    },
  );

  it.each(['evilfbcdn.net', 'fbcdn.net.evil.com', 'facebook.co', 'localhost', '', '127.0.0.2'])('refuses %s', (hostname) => {
    expect(isAllowedHost(hostname, allowed)).toBe(false);
  });

  it('matches IP addresses exactly, never as a parent domain', () => {
    expect(isAllowedHost('127.0.0.1', ['0.0.1'])).toBe(false);
  });
});

describe('downloadImage', () => {
  let fake: FakeGraphApi;
  let options: DownloadImageOptions;

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    // An allowed host stands for port 443 only: the fake's port is named with it.
    options = { allowedHosts: [new URL(fake.url).host], timeoutMs: 2000, maxBytes: 100_000 };
  });
  beforeEach(() => fake.reset());
  afterAll(() => fake.stop());

  it('downloads a PNG and reports what the bytes are', async () => {
    const image = await downloadImage(fake.hostImage({ kind: 'success' }, 150), options);
    expect(image).toMatchObject({ contentType: 'image/png', width: 150, height: 150 });
    expect(PNG.sync.read(image.bytes).width).toBe(150);
  });

  it('downloads a JPEG', async () => {
    const image = await downloadImage(fake.hostImage({ kind: 'success', format: 'jpeg' }, 120), options);
    expect(image).toMatchObject({ contentType: 'image/jpeg', width: 120, height: 120 });
  });

  it.each([
    ['a look-alike host', 'http://evilfbcdn.net/code.png', /evilfbcdn\.net, which is not an allowed image host/],
    ['a host below a look-alike', 'https://fbcdn.net.evil.com/code.png', /not an allowed image host/],
    ['a file: URL', 'file:///etc/passwd', /only http: and https:/],
    ['an ftp: URL', 'ftp://127.0.0.1/code.png', /only http: and https:/],
    ['a data: URL', 'data:image/png;base64,iVBORw0KGgo=', /only http: and https:/],
    ['something that is not a URL', 'not a url', /not a valid URL/],
  ])('refuses %s without requesting it', async (_description, url, message) => {
    const error = await rejectionOf(downloadImage(url, { ...options, allowedHosts: ['fbcdn.net', new URL(fake.url).host] }));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(message);
    expect(fake.imageRequests).toBe(0);
  });

  it('refuses URLs that carry credentials', async () => {
    const url = new URL(fake.hostImage({ kind: 'success' }, 100));
    url.username = 'someone';
    url.password = 'secret';
    const error = await rejectionOf(downloadImage(url.toString(), options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).not.toContain('secret');
  });

  it('follows redirects between allowed hosts', async () => {
    const image = await downloadImage(fake.hostImage({ kind: 'redirectToAllowedHost', hops: 3 }, 100), options);
    expect(image).toMatchObject({ width: 100, height: 100 });
    expect(fake.imageRequests).toBe(4);
  });

  it('stops after maxRedirects', async () => {
    const url = fake.hostImage({ kind: 'redirectToAllowedHost', hops: 2 }, 100);
    const error = await rejectionOf(downloadImage(url, { ...options, maxRedirects: 1 }));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/redirected more than 1 times/);
  });

  it('refuses a redirect to a host that is not allowed, without following it', async () => {
    const error = await rejectionOf(downloadImage(fake.hostImage({ kind: 'redirectToDisallowedHost' }), options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/redirected to localhost, which is not an allowed image host/);
    expect(fake.imageRequests).toBe(1);
  });

  it('refuses a body whose Content-Length exceeds the cap', async () => {
    const url = fake.hostImage({ kind: 'oversizedImage', bytes: options.maxBytes + 1 });
    const error = await rejectionOf(downloadImage(url, options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/larger than the limit of 100000 bytes/);
  });

  it('counts the bytes it reads when there is no Content-Length', async () => {
    const url = fake.hostImage({ kind: 'oversizedImage', bytes: 3 * options.maxBytes, omitContentLength: true });
    const error = await rejectionOf(downloadImage(url, options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/larger than the limit/);
  });

  it('judges the bytes, not the Content-Type', async () => {
    const error = await rejectionOf(downloadImage(fake.hostImage({ kind: 'nonImage' }), options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/not a complete PNG or JPEG/);
  });

  it('treats 4xx as a refusal: an expired link stays expired', async () => {
    const url = fake.hostImage({ kind: 'imageOnce' }, 100);
    await expect(downloadImage(url, options)).resolves.toMatchObject({ width: 100 });
    const error = await rejectionOf(downloadImage(url, options));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/HTTP 404/);
  });

  it('treats 5xx as unavailable', async () => {
    const error = await rejectionOf(downloadImage(fake.hostImage({ kind: 'imageStatus', status: 503 }), options));
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
  });

  it('gives up on a body that stalls, within the timeout', async () => {
    const error = await rejectionOf(downloadImage(fake.hostImage({ kind: 'stalledImage' }), { ...options, timeoutMs: 200 }));
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.message).toMatch(/did not deliver within 200 ms/);
  });

  it('refuses an allowed host on a port that is not allowed, without requesting it', async () => {
    const other = await FakeGraphApi.start();
    try {
      // The same host, another port: a different service (CODE_IMAGE_HOSTS names ports, 443 when it does not).
      const error = await rejectionOf(downloadImage(other.hostImage({ kind: 'success' }, 100), options));
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${new URL(other.url).port}, which is not an allowed image host`));
      expect(other.imageRequests).toBe(0);
      const bare = await rejectionOf(downloadImage(fake.hostImage({ kind: 'success' }, 100), { ...options, allowedHosts: ['127.0.0.1'] }));
      expect(bare.message).toMatch(/not an allowed image host/);
    } finally {
      await other.stop();
    }
  });

  it('reports a host that refuses connections as unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const error = await rejectionOf(
      downloadImage(`http://127.0.0.1:${port}/code.png`, { ...options, allowedHosts: [`127.0.0.1:${port}`] }),
    );
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.message).toMatch(/could not be reached \(ECONNREFUSED\)/);
  });
});

describe('FakeGraphApi', () => {
  let fake: FakeGraphApi;
  beforeAll(async () => {
    fake = await FakeGraphApi.start();
  });
  afterAll(() => fake.stop());

  it('refuses a call without access token, without spending a scripted behaviour', async () => {
    fake.enqueue({ kind: 'http500' });
    const response = await fetch(`${fake.url}/v2.6/me/messenger_codes`, {
      method: 'POST',
      body: JSON.stringify({ type: 'standard', image_size: 100 }),
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: 190, fbtrace_id: expect.any(String) } });

    const next = await fetch(`${fake.url}/v2.6/me/messenger_codes?access_token=x`, {
      method: 'POST',
      body: JSON.stringify({ type: 'standard', image_size: 100 }),
    });
    expect(next.status).toBe(500);
  });

  it('refuses parameters the real endpoint refused', async () => {
    const response = await fetch(`${fake.url}/v2.6/me/messenger_codes?access_token=x`, {
      method: 'POST',
      body: JSON.stringify({ type: 'standard', image_size: 5000 }),
    });
    expect(await response.json()).toMatchObject({ error: { code: 100 } });
  });
});

describe('FacebookCodeImageProvider', () => {
  let fake: FakeGraphApi;
  let options: FacebookProviderOptions;
  let provider: FacebookCodeImageProvider;
  const codeRequest = { pageId: '1234', ref: 'table-12', imageSize: 120, link: 'https://m.me/1234?ref=table-12', pageAccessToken: TOKEN };

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    options = {
      graphApiUrl: fake.url,
      graphApiVersion: 'v2.6',
      allowedImageHosts: ['fbcdn.net', 'facebook.com'],
      // Generous: nothing here should time out except where a test makes it.
      requestTimeoutMs: 2000,
      maxAttempts: 3,
      retryBaseDelayMs: 5,
      maxImageBytes: 1_000_000,
    };
    provider = new FacebookCodeImageProvider(options);
  });
  beforeEach(() => fake.reset());
  afterAll(() => fake.stop());

  it('is the FACEBOOK provider', () => {
    expect(provider.kind).toBe(CodeProviderKind.FACEBOOK);
  });

  it('asks for the code as the Messenger Code API expects and returns the downloaded image', async () => {
    const image = await provider.obtain(codeRequest);

    expect(fake.requests).toEqual([
      {
        method: 'POST',
        path: '/v2.6/me/messenger_codes',
        query: { access_token: TOKEN },
        body: { type: 'standard', image_size: 120, data: { ref: 'table-12' } },
      },
    ]);
    expect(image).toMatchObject({ contentType: 'image/png', width: 120, height: 120 });
    const decoded = PNG.sync.read(image.bytes);
    expect([decoded.width, decoded.height]).toEqual([120, 120]);
    expect(fake.imageRequests).toBe(1);
  });

  it('leaves out data for the static code', async () => {
    await provider.obtain({ ...codeRequest, ref: null });
    expect(fake.requests[0].body).toEqual({ type: 'standard', image_size: 120 });
  });

  it('refuses a Graph API answer larger than 64 KiB without reading the rest of it', async () => {
    // 400 MB offered; the fake writes only as the client reads.
    fake.enqueue({ kind: 'hugeAnswer', bytes: 400 * 1024 * 1024 });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/answered with more than 65536 bytes/);
    expect(fake.requests).toHaveLength(1);
  });

  it('refuses an image of another size than the one asked for', async () => {
    fake.enqueue({ kind: 'imageOfSize', size: 150 });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/150 × 150 pixels instead of 120 × 120/);
  });

  it('refuses a PNG whose header claims 100,000 × 100,000 pixels', async () => {
    fake.enqueue({ kind: 'claimedDimensions', width: 100_000, height: 100_000 });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/100000 × 100000 pixels instead of 120 × 120/);
  });

  it('accepts a JPEG code image', async () => {
    fake.enqueue({ kind: 'success', format: 'jpeg' });
    await expect(provider.obtain(codeRequest)).resolves.toMatchObject({ contentType: 'image/jpeg', width: 120 });
  });

  it('reports a bad token as UPSTREAM_ERROR with the Graph details, without retrying', async () => {
    fake.enqueue({ kind: 'graphError', code: 190, subcode: 463 });
    const error = await rejectionOf(provider.obtain(codeRequest));

    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/page access token is invalid or expired/);
    expect(error.extensions).toEqual({
      code: 'UPSTREAM_ERROR',
      upstream: { code: 190, type: 'OAuthException', subcode: 463, fbtrace_id: expect.stringMatching(/^A/) },
    });
    expect(fake.requests).toHaveLength(1);
  });

  it.each([
    [10, /lacks a permission/],
    [200, /lacks a permission/],
    [299, /lacks a permission/],
    [100, /rejected a parameter/],
    [12, /CODE_PROVIDER=local/],
    [9999, /refused the request \(Graph API error 9999\)/],
  ])('reports Graph error %i as UPSTREAM_ERROR without retrying', async (code, message) => {
    fake.enqueue({ kind: 'graphError', code });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(message);
    expect(error.extensions.upstream).toMatchObject({ code });
    expect(fake.requests).toHaveLength(1);
  });

  it.each([1, 2, 4, 17, 32, 341, 613])('retries transient Graph error %i', async (code) => {
    fake.enqueue({ kind: 'graphError', code, status: code === 2 ? 500 : 400 });
    await expect(provider.obtain(codeRequest)).resolves.toMatchObject({ width: 120 });
    expect(fake.requests).toHaveLength(2);
  });

  it('gives up after maxAttempts with a retryable UPSTREAM_UNAVAILABLE', async () => {
    fake.enqueue({ kind: 'graphError', code: 613 }, { kind: 'graphError', code: 613 }, { kind: 'graphError', code: 613 });
    const error = await rejectionOf(provider.obtain(codeRequest));

    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.extensions).toEqual({ code: 'UPSTREAM_UNAVAILABLE', retryable: true });
    expect(error.message).toMatch(/failed 3 time\(s\) in a row \(last: Graph API error 613\)/);
    expect(fake.requests).toHaveLength(3);
  });

  it('retries an HTTP 500 that carries no Graph error', async () => {
    fake.enqueue({ kind: 'http500' });
    await expect(provider.obtain(codeRequest)).resolves.toMatchObject({ width: 120 });
    expect(fake.requests).toHaveLength(2);
  });

  it('reports malformed JSON as UPSTREAM_ERROR without retrying', async () => {
    fake.enqueue({ kind: 'malformedJson' });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/malformed JSON/);
    expect(fake.requests).toHaveLength(1);
  });

  it('times out each attempt and then reports UPSTREAM_UNAVAILABLE', async () => {
    const impatient = new FacebookCodeImageProvider({ ...options, requestTimeoutMs: 200 });
    // The fake answers only clients still waiting, so a long delay costs nothing once they give up.
    fake.enqueue({ kind: 'slow', delayMs: 60_000 }, { kind: 'slow', delayMs: 60_000 }, { kind: 'slow', delayMs: 60_000 });
    const error = await rejectionOf(impatient.obtain(codeRequest));

    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(error.message).toMatch(/no answer within 200 ms/);
    expect(fake.requests).toHaveLength(3);
  });

  it('downloads the image at once, while its link still works', async () => {
    fake.enqueue({ kind: 'imageOnce' });
    await expect(provider.obtain(codeRequest)).resolves.toMatchObject({ width: 120, height: 120 });
    expect(fake.imageRequests).toBe(1);
  });

  it('refuses an image that is HTML labelled image/png', async () => {
    fake.enqueue({ kind: 'nonImage' });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/not a complete PNG or JPEG/);
  });

  it('refuses an image larger than maxImageBytes', async () => {
    fake.enqueue({ kind: 'oversizedImage', bytes: options.maxImageBytes + 1 });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/larger than the limit/);
  });

  it('refuses an image redirected to a host that is not allowed', async () => {
    fake.enqueue({ kind: 'redirectToDisallowedHost' });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.message).toMatch(/localhost, which is not an allowed image host/);
  });

  it('follows an image redirect to an allowed host', async () => {
    fake.enqueue({ kind: 'redirectToAllowedHost' });
    await expect(provider.obtain(codeRequest)).resolves.toMatchObject({ width: 120, height: 120 });
    expect(fake.imageRequests).toBe(2);
  });

  it('tries the image download a second time when the image host fails', async () => {
    fake.enqueue({ kind: 'imageStatus', status: 503 });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error).toBeInstanceOf(UpstreamUnavailableError);
    expect(fake.requests).toHaveLength(1);
    expect(fake.imageRequests).toBe(2);
  });

  it('keeps the token out of a Graph message that echoes it', async () => {
    fake.enqueue({ kind: 'graphError', code: 190, message: `Malformed access token ${TOKEN}` });
    const error = await rejectionOf(provider.obtain(codeRequest));
    expect(error.message).toContain('Malformed access token [redacted]');
  });

  it('throws a plain Error when called without a token: a programming mistake, not an upstream failure', async () => {
    const promise = provider.obtain({ ...codeRequest, pageAccessToken: undefined });
    await expect(promise).rejects.toThrow('needs request.pageAccessToken');
    await expect(promise).rejects.not.toBeInstanceOf(GraphQLError);
    expect(fake.requests).toHaveLength(0);
  });

  it('never put the token in any error it raised', () => {
    expect(provokedErrors.length).toBeGreaterThan(20);
    for (const error of provokedErrors) {
      const graphQLError = error as GraphQLError;
      expect(graphQLError.message).not.toContain(TOKEN);
      expect(JSON.stringify(graphQLError.extensions)).not.toContain(TOKEN);
      expect(String(graphQLError.stack)).not.toContain(TOKEN);
    }
  });
});

// The fake's own square PNG, used by e2e tests through the fake, is a real decodable PNG.
test('the fake renders decodable square PNGs', () => {
  const decoded = PNG.sync.read(renderPng(100));
  expect([decoded.width, decoded.height]).toEqual([100, 100]);
});
