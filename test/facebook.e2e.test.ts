import { createHmac } from 'node:crypto';
import { print, type GraphQLFormattedError } from 'graphql';
import { CodesDocument, GenerateCodeDocument, type GenerateCodeInput, type GenerateCodeMutation } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { FakeGraphApi, renderGrayJpeg, renderPng, type FakeGraphBehaviour, type FakeImageBehaviour } from './support/fake-graph-api';
import { countRows, startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';
import { TEST_APP_SECRET } from './support/webhook';

reportSkippedDatabases();

const TOKEN = 'test-token-EAAG0123456789abcdefSECRET';
/** The gateway refuses images above 5 MiB (MAX_UPSTREAM_IMAGE_BYTES in src/app/services.ts). */
const MAX_IMAGE_BYTES = 5 * 1024 * 1024;

interface RawResult {
  status: number;
  text: string;
  data?: GenerateCodeMutation | null;
  errors?: GraphQLFormattedError[];
}

describe.each(DATABASE_KINDS)('FACEBOOK provider through generateCode on %s', (kind) => {
  let fake: FakeGraphApi;
  let gateway: TestGateway;
  /** Every image URI the fake handed out, in order (the fake itself keeps only the requests). */
  const issuedUris: string[] = [];

  beforeAll(async () => {
    fake = await FakeGraphApi.start();
    const hostImage = fake.hostImage.bind(fake);
    fake.hostImage = (behaviour: FakeImageBehaviour, imageSize?: number) => {
      const uri = hostImage(behaviour, imageSize);
      issuedUris.push(uri);
      return uri;
    };
    gateway = await startTestGateway(kind, {
      CODE_PROVIDER: 'facebook',
      GRAPH_API_URL: fake.url,
      PAGE_ACCESS_TOKEN: TOKEN,
      // Far above what a call to the local fake takes on a busy machine: only the fake's
      // slow and stalled answers (far longer still) reach it.
      GRAPH_API_TIMEOUT_MS: '2000',
      GRAPH_API_MAX_ATTEMPTS: '3',
    });
  });
  beforeEach(() => {
    fake.reset();
    issuedUris.length = 0;
  });
  afterAll(async () => {
    await gateway?.stop();
    await fake?.stop();
  });

  /** generateCode over HTTP, keeping the raw text so that it can be searched for the token. */
  async function generate(input: GenerateCodeInput): Promise<RawResult> {
    const response = await fetch(`${gateway.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
      body: JSON.stringify({ query: print(GenerateCodeDocument), variables: { input } }),
    });
    const text = await response.text();
    return { status: response.status, text, ...(JSON.parse(text) as Omit<RawResult, 'status' | 'text'>) };
  }

  async function generateOk(input: GenerateCodeInput): Promise<GenerateCodeMutation['generateCode']> {
    const result = await generate(input);
    expect(result.errors).toBeUndefined();
    expect(result.text).not.toContain(TOKEN);
    return (result.data as GenerateCodeMutation).generateCode;
  }

  async function storedRows(): Promise<number[]> {
    return [await countRows(gateway, 'code'), await countRows(gateway, 'code_image')];
  }

  async function imageBytes(url: string): Promise<{ contentType: string | null; bytes: Buffer }> {
    const response = await fetch(url);
    expect(response.status).toBe(200);
    return { contentType: response.headers.get('content-type'), bytes: Buffer.from(await response.arrayBuffer()) };
  }

  /** Scripts the fake, asks for a new code, and checks the one error, its code, and that nothing was stored. */
  async function expectFailure(
    ref: string,
    behaviours: FakeGraphBehaviour[],
    code: 'UPSTREAM_ERROR' | 'UPSTREAM_UNAVAILABLE',
  ): Promise<GraphQLFormattedError> {
    const before = await storedRows();
    fake.enqueue(...behaviours);
    const result = await generate({ data: { ref }, imageSize: 200 });
    expect(result.data ?? null).toBeNull();
    expect(result.errors).toHaveLength(1);
    const [error] = result.errors as GraphQLFormattedError[];
    expect(error.extensions?.code).toBe(code);
    expect(error.path).toEqual(['generateCode']);
    if (code === 'UPSTREAM_UNAVAILABLE') expect(error.extensions?.retryable).toBe(true);
    expect(error.message.length).toBeGreaterThan(10);
    expect(result.text).not.toContain(TOKEN);
    expect(result.text).not.toContain(encodeURIComponent(TOKEN));
    expect(await storedRows()).toEqual(before);
    expect((await executeOk(gateway.url, CodesDocument, { ref })).codes.totalCount).toBe(0);
    return error;
  }

  describe('success', () => {
    it('asks the Graph API as the Messenger Code API expects and serves the downloaded image itself', async () => {
      const before = await storedRows();
      const ref = 'table+12/a=b:c';
      const code = await generateOk({ data: { ref }, imageSize: 300, label: 'Table 12' });
      expect(code).toMatchObject({
        pageId: TEST_PAGE_ID,
        type: 'STANDARD',
        ref,
        label: 'Table 12',
        provider: 'FACEBOOK',
        imageSize: 300,
        scanCount: 0,
        lastScannedAt: null,
      });
      expect(fake.requests).toEqual([
        {
          method: 'POST',
          path: '/v2.6/me/messenger_codes',
          // APP_SECRET is set (the test gateway's): every call proves the app with appsecret_proof.
          query: { access_token: TOKEN, appsecret_proof: createHmac('sha256', TEST_APP_SECRET).update(TOKEN).digest('hex') },
          body: { type: 'standard', image_size: 300, data: { ref } },
        },
      ]);
      expect(fake.imageRequests).toBe(1);
      expect(await storedRows()).toEqual([before[0] + 1, before[1] + 1]);

      // The permanent URL is the gateway's, never the expiring upstream one.
      expect(code.imageUrl.startsWith(`${gateway.publicUrl}/images/`)).toBe(true);
      expect(code.imageUrl).not.toContain(fake.url);
      const image = await imageBytes(code.imageUrl);
      expect(image.contentType).toBe('image/png');
      expect(image.bytes.equals(renderPng(300))).toBe(true);
      expect(fake.imageRequests).toBe(1);
    });

    it('leaves data out of the request for the static code', async () => {
      const code = await generateOk({ imageSize: 200 });
      expect(code).toMatchObject({ ref: null, provider: 'FACEBOOK', imageSize: 200 });
      expect(fake.requests.map((request) => request.body)).toEqual([{ type: 'standard', image_size: 200 }]);
    });

    it('returns the stored code without calling the Graph API again; a new size calls it once', async () => {
      const first = await generateOk({ data: { ref: 'again' }, imageSize: 200 });
      const again = await generateOk({ data: { ref: 'again' }, imageSize: 200 });
      expect(again).toEqual(first);
      expect(fake.requests).toHaveLength(1);

      const larger = await generateOk({ data: { ref: 'again' }, imageSize: 400 });
      expect(larger).toMatchObject({ id: first.id, imageSize: 400 });
      expect(larger.imageUrl).not.toBe(first.imageUrl);
      expect(fake.requests.map((request) => (request.body as { image_size: number }).image_size)).toEqual([200, 400]);
      expect((await imageBytes(first.imageUrl)).bytes.equals(renderPng(200))).toBe(true);
      expect((await imageBytes(larger.imageUrl)).bytes.equals(renderPng(400))).toBe(true);
    });

    it('stores a JPEG code image with its content type', async () => {
      fake.enqueue({ kind: 'success', format: 'jpeg' });
      const code = await generateOk({ data: { ref: 'jpeg' }, imageSize: 240 });
      const image = await imageBytes(code.imageUrl);
      expect(image.contentType).toBe('image/jpeg');
      expect(image.bytes.equals(renderGrayJpeg(240, 240))).toBe(true);
    });

    it('follows image redirects within allowed hosts', async () => {
      fake.enqueue({ kind: 'redirectToAllowedHost', hops: 2 });
      const code = await generateOk({ data: { ref: 'redirected' }, imageSize: 200 });
      expect((await imageBytes(code.imageUrl)).bytes.equals(renderPng(200))).toBe(true);
      expect(fake.imageRequests).toBe(3);
    });

    it('keeps serving its stored copy after the upstream link expired', async () => {
      fake.enqueue({ kind: 'imageOnce' });
      const code = await generateOk({ data: { ref: 'expiring' }, imageSize: 200 });
      expect(issuedUris).toHaveLength(1);
      const upstream = await fetch(issuedUris[0]);
      expect(upstream.status).toBe(404);
      await upstream.arrayBuffer();
      const image = await imageBytes(code.imageUrl);
      expect(image.bytes.equals(renderPng(200))).toBe(true);
      expect(fake.imageRequests).toBe(2);
    });
  });

  describe('retries', () => {
    it('retries a throttled call (Graph error 4) and succeeds on the second', async () => {
      fake.enqueue({ kind: 'graphError', code: 4 });
      const code = await generateOk({ data: { ref: 'throttled-once' }, imageSize: 200 });
      expect(code.provider).toBe('FACEBOOK');
      expect(fake.requests).toHaveLength(2);
    });

    it('retries an HTTP 500 without a Graph error and succeeds on the second', async () => {
      fake.enqueue({ kind: 'http500' });
      await generateOk({ data: { ref: 'blip' }, imageSize: 200 });
      expect(fake.requests).toHaveLength(2);
    });

    it('gives up after 3 rate-limited calls (613) with a retryable UPSTREAM_UNAVAILABLE', async () => {
      const rateLimited: FakeGraphBehaviour = { kind: 'graphError', code: 613, type: 'OAuthException' };
      await expectFailure('rate-limited', [rateLimited, rateLimited, rateLimited], 'UPSTREAM_UNAVAILABLE');
      expect(fake.requests).toHaveLength(3);
    });

    it('gives up after 3 HTTP 500s with UPSTREAM_UNAVAILABLE', async () => {
      await expectFailure('down', [{ kind: 'http500' }, { kind: 'http500' }, { kind: 'http500' }], 'UPSTREAM_UNAVAILABLE');
      expect(fake.requests).toHaveLength(3);
    });

    it('gives up on a Graph API slower than GRAPH_API_TIMEOUT_MS with UPSTREAM_UNAVAILABLE', async () => {
      const slow: FakeGraphBehaviour = { kind: 'slow', delayMs: 30_000 };
      await expectFailure('slow', [slow, slow, slow], 'UPSTREAM_UNAVAILABLE');
      expect(fake.requests).toHaveLength(3);
    });
  });

  describe('refusals', () => {
    it('reports a bad token (190) as UPSTREAM_ERROR with the Graph details, without retrying', async () => {
      const error = await expectFailure(
        'bad-token',
        [{ kind: 'graphError', code: 190, type: 'OAuthException', subcode: 463 }],
        'UPSTREAM_ERROR',
      );
      expect(error.extensions?.upstream).toEqual({
        code: 190,
        type: 'OAuthException',
        subcode: 463,
        fbtrace_id: expect.stringMatching(/^A[\w-]+$/),
      });
      expect(error.extensions?.retryable).toBeUndefined();
      expect(fake.requests).toHaveLength(1);
    });

    it.each([
      [10, 'OAuthException'],
      [200, 'OAuthException'],
      [100, 'GraphMethodException'],
      [12, 'OAuthException'],
    ])('reports Graph error %i as UPSTREAM_ERROR without retrying', async (graphCode, type) => {
      const error = await expectFailure(`refused-${graphCode}`, [{ kind: 'graphError', code: graphCode, type }], 'UPSTREAM_ERROR');
      expect(error.extensions?.upstream).toMatchObject({ code: graphCode, type, fbtrace_id: expect.any(String) });
      expect(fake.requests).toHaveLength(1);
    });

    it('keeps the token out of the answer when the Graph message echoes it', async () => {
      await expectFailure(
        'echo',
        [{ kind: 'graphError', code: 190, message: `Invalid OAuth access token: ${TOKEN} (${encodeURIComponent(TOKEN)})` }],
        'UPSTREAM_ERROR',
      );
    });

    it('reports malformed JSON as UPSTREAM_ERROR', async () => {
      await expectFailure('malformed', [{ kind: 'malformedJson' }], 'UPSTREAM_ERROR');
      expect(fake.requests).toHaveLength(1);
    });
  });

  describe('images that cannot be stored', () => {
    it('refuses HTML labelled image/png as UPSTREAM_ERROR', async () => {
      await expectFailure('not-an-image', [{ kind: 'nonImage' }], 'UPSTREAM_ERROR');
    });

    it('refuses an image above the size limit (with Content-Length) as UPSTREAM_ERROR', async () => {
      await expectFailure('too-large', [{ kind: 'oversizedImage', bytes: MAX_IMAGE_BYTES + 1 }], 'UPSTREAM_ERROR');
    });

    it('refuses an image above the size limit (chunked, no Content-Length) as UPSTREAM_ERROR', async () => {
      await expectFailure(
        'too-large-chunked',
        [{ kind: 'oversizedImage', bytes: MAX_IMAGE_BYTES + 1, omitContentLength: true }],
        'UPSTREAM_ERROR',
      );
    });

    it('refuses a redirect to a host that is not allowed, without following it', async () => {
      await expectFailure('elsewhere', [{ kind: 'redirectToDisallowedHost' }], 'UPSTREAM_ERROR');
      expect(fake.imageRequests).toBe(1);
    });

    it('reports an expired image link (404) as UPSTREAM_ERROR', async () => {
      await expectFailure('gone', [{ kind: 'imageStatus', status: 404 }], 'UPSTREAM_ERROR');
    });

    it('reports a failing image host (503) as UPSTREAM_UNAVAILABLE after one more try', async () => {
      await expectFailure('cdn-down', [{ kind: 'imageStatus', status: 503 }], 'UPSTREAM_UNAVAILABLE');
      expect(fake.imageRequests).toBe(2);
    });

    it('reports an image that stalls past the timeout as UPSTREAM_UNAVAILABLE', async () => {
      await expectFailure('stalled', [{ kind: 'stalledImage' }], 'UPSTREAM_UNAVAILABLE');
    });
  });

  describe('an existing code', () => {
    it('keeps its current image when a new size fails upstream', async () => {
      const code = await generateOk({ data: { ref: 'resize-fails' }, imageSize: 200 });
      const before = await storedRows();
      fake.enqueue({ kind: 'graphError', code: 190 });
      const result = await generate({ data: { ref: 'resize-fails' }, imageSize: 500 });
      expect(result.errors?.[0].extensions?.code).toBe('UPSTREAM_ERROR');
      expect(result.text).not.toContain(TOKEN);
      expect(await storedRows()).toEqual(before);
      const { codes } = await executeOk(gateway.url, CodesDocument, { ref: 'resize-fails' });
      expect(codes.edges.map((edge) => edge.node)).toEqual([code]);
    });
  });

  describe('bad input', () => {
    it.each([
      { name: 'imageSize 99', input: { imageSize: 99 }, field: 'imageSize' },
      { name: 'imageSize 2001', input: { imageSize: 2001 }, field: 'imageSize' },
      { name: 'a ref with a space', input: { data: { ref: 'a b' } }, field: 'data.ref' },
      { name: 'a ref of 251 characters', input: { data: { ref: 'x'.repeat(251) } }, field: 'data.ref' },
    ] as { name: string; input: GenerateCodeInput; field: string }[])(
      'refuses $name before calling the Graph API',
      async ({ input, field }) => {
        const before = await storedRows();
        const result = await generate(input);
        expect(result.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
        expect(fake.requests).toHaveLength(0);
        expect(await storedRows()).toEqual(before);
      },
    );
  });
});
