import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UpstreamError, UpstreamUnavailableError, type UpstreamDetails } from '../../errors';
import { describeNetworkError, downloadImage, effectivePort, readCapped, type DownloadImageOptions } from '../../images/image-download';
import { CodeProviderKind, type CodeImage } from '../../images/image.types';
import { styleDownloadedCode } from '../styled-code';
import type { CodeImageProvider, CodeImageRequest } from './code-image-provider';

export interface FacebookProviderOptions {
  /** e.g. https://graph.facebook.com; its host may also serve the images */
  graphApiUrl: string;
  /** path segment such as v2.6 */
  graphApiVersion: string;
  /** hosts (and subdomains) code images may be downloaded from */
  allowedImageHosts: string[];
  /** budget of one Graph API attempt, and of one image download */
  requestTimeoutMs: number;
  /** Graph API attempts in total, the first included */
  maxAttempts: number;
  /** the n-th retry waits about retryBaseDelayMs * 2^(n-1) */
  retryBaseDelayMs: number;
  maxImageBytes: number;
  /**
   * APP_SECRET: when set, every call carries appsecret_proof, which an app requiring
   * "app secret proof" insists on, so that a leaked token alone is useless to others.
   */
  appSecret?: string;
  /** told the outcome of every Graph API call (for /metrics) */
  onGraphCall?: (outcome: GraphCallOutcome) => void;
}

/** A Graph API call gave the image URI, was refused for good, or failed in a way worth retrying. */
export type GraphCallOutcome = 'success' | 'refused' | 'transient';

/** Graph API error codes that mean "busy or throttled, try again": https://developers.facebook.com/docs/graph-api/guides/error-handling */
const TRANSIENT_GRAPH_CODES = new Set([1, 2, 4, 17, 32, 341, 613]);
const GRAPH_CODE_INVALID_TOKEN = 190;
const GRAPH_CODE_PERMISSION = 10;
const GRAPH_CODE_INVALID_PARAMETER = 100;
const GRAPH_CODE_DEPRECATED = 12;
/** Largest Graph API answer read; the endpoint answers a few hundred bytes. */
const MAX_GRAPH_RESPONSE_BYTES = 64 * 1024;
/** Enough of Graph's own message to help, not enough to flood a client. */
const MAX_GRAPH_MESSAGE_CHARS = 300;

/** The `error` object of a Graph API error answer. */
interface GraphError {
  code: number;
  message?: string;
  type?: string;
  error_subcode?: number;
  fbtrace_id?: string;
  is_transient?: boolean;
}

/** A Graph API call either yields the image URI or failed in a way another attempt may fix; other failures throw. */
type GraphAttempt = { uri: string } | { transientFailure: string };

/**
 * Obtains codes from the Messenger Code API (`POST /me/messenger_codes`) and downloads the image
 * it points to at once, because that URI expires. Meta removed this endpoint in 2019; the provider
 * exists for deployments that still reach a compatible API, and is tested against a local fake.
 */
export class FacebookCodeImageProvider implements CodeImageProvider {
  readonly kind = CodeProviderKind.FACEBOOK;
  readonly needsAccessToken = true;
  private readonly endpoint: string;
  private readonly download: DownloadImageOptions;

  constructor(private readonly options: FacebookProviderOptions) {
    const graph = new URL(options.graphApiUrl);
    // With its port: an allowed host stands for port 443 only (see isAllowedOrigin).
    const graphHost = `${graph.hostname}:${effectivePort(graph)}`;
    this.endpoint = `${options.graphApiUrl.replace(/\/+$/, '')}/${options.graphApiVersion}/me/messenger_codes`;
    this.download = {
      // The Graph API host itself may hand out image URIs on its own domain.
      allowedHosts: [...options.allowedImageHosts, graphHost],
      timeoutMs: options.requestTimeoutMs,
      maxBytes: options.maxImageBytes,
    };
  }

  async obtain(request: CodeImageRequest): Promise<CodeImage> {
    const token = request.pageAccessToken;
    if (!token) {
      // Callers must resolve the page's token before asking; reaching here is a bug, not a user error.
      throw new Error('FacebookCodeImageProvider.obtain needs request.pageAccessToken.');
    }

    let lastFailure = '';
    const attempts = Math.max(1, Math.floor(this.options.maxAttempts));
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (attempt > 1) await sleep(this.backoffMs(attempt - 1));
      const result = await this.countedGraphCall(request, token);
      if ('uri' in result) {
        const image = checkSize(await this.downloadFreshImage(result.uri), request.imageSize);
        // Composited on the downloaded image, as the Messenger Code API's documentation suggested.
        return request.style ? styleDownloadedCode(image, request.style) : image;
      }
      lastFailure = result.transientFailure;
    }
    throw new UpstreamUnavailableError(
      `The Messenger Code API failed ${attempts} time(s) in a row (last: ${lastFailure}); try again later.`,
    );
  }

  private async countedGraphCall(request: CodeImageRequest, token: string): Promise<GraphAttempt> {
    const report = this.options.onGraphCall;
    try {
      const result = await this.callGraph(request, token);
      report?.('uri' in result ? 'success' : 'transient');
      return result;
    } catch (error) {
      report?.('refused');
      throw error;
    }
  }

  private async callGraph(request: CodeImageRequest, token: string): Promise<GraphAttempt> {
    const url = new URL(this.endpoint);
    url.searchParams.set('access_token', token);
    if (this.options.appSecret !== undefined) url.searchParams.set('appsecret_proof', appSecretProof(token, this.options.appSecret));
    const body = {
      type: 'standard',
      image_size: request.imageSize,
      ...(request.ref === null ? {} : { data: { ref: request.ref } }),
    };
    // Covers the headers and the body: a server that stalls half-way counts as a timeout too.
    const signal = AbortSignal.timeout(this.options.requestTimeoutMs);
    let status: number;
    let text: string;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        // Following a redirect would send the token in the URL to wherever it points.
        redirect: 'manual',
        signal,
      });
      status = response.status;
      const answer = await readCapped(response, MAX_GRAPH_RESPONSE_BYTES);
      // An answer of this endpoint is a few hundred bytes; a huge one is not read into memory.
      if (answer === 'too large')
        throw new UpstreamError(`The Messenger Code API answered with more than ${MAX_GRAPH_RESPONSE_BYTES} bytes.`);
      text = answer.toString('utf8');
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      return {
        transientFailure: signal.aborted
          ? `no answer within ${this.options.requestTimeoutMs} ms`
          : `network error ${describeNetworkError(error)}`,
      };
    }
    return this.classifyAnswer(status, text, token);
  }

  /** Turns an HTTP answer into a URI, a failure worth retrying, or a thrown UpstreamError. */
  private classifyAnswer(status: number, text: string, token: string): GraphAttempt {
    const json = parseJson(text);
    const graphError = readGraphError(json);
    if (graphError) {
      if (TRANSIENT_GRAPH_CODES.has(graphError.code) || graphError.is_transient === true) {
        return { transientFailure: `Graph API error ${graphError.code}` };
      }
      throw refusal(graphError, token);
    }
    if (status >= 500 || status === 429) return { transientFailure: `HTTP ${status}` };
    if (status < 200 || status >= 300) {
      throw new UpstreamError(`The Messenger Code API answered HTTP ${status} without a Graph API error.`);
    }
    if (json === undefined) throw new UpstreamError('The Messenger Code API answered with malformed JSON.');
    const uri = isRecord(json) ? json.uri : undefined;
    if (typeof uri !== 'string' || uri === '') {
      throw new UpstreamError('The Messenger Code API answered without the "uri" of the code image.');
    }
    return { uri };
  }

  /** The URI was just issued, so one more try after a blip at the image host is cheap and usually enough. */
  private async downloadFreshImage(uri: string): Promise<CodeImage> {
    try {
      return await downloadImage(uri, this.download);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError)) throw error;
      return downloadImage(uri, this.download);
    }
  }

  /** Exponential, with jitter so that many gateways throttled together do not retry in lockstep. */
  private backoffMs(retry: number): number {
    const ceiling = this.options.retryBaseDelayMs * 2 ** retry;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }
}

/** https://developers.facebook.com/docs/graph-api/securing-requests: HMAC-SHA256 of the token keyed by the app secret, hex. */
export function appSecretProof(token: string, appSecret: string): string {
  return createHmac('sha256', appSecret).update(token).digest('hex');
}

/**
 * The image must be what was asked for: its header decides what a viewer will try to
 * decode, and a PNG claiming 100,000 × 100,000 pixels is a decompression bomb.
 */
function checkSize(image: CodeImage, imageSize: number): CodeImage {
  if (image.width !== imageSize || image.height !== imageSize) {
    throw new UpstreamError(
      `The Messenger Code API returned an image of ${image.width} × ${image.height} pixels instead of ${imageSize} × ${imageSize}.`,
    );
  }
  return image;
}

function refusal(error: GraphError, token: string): UpstreamError {
  const upstream: UpstreamDetails = { code: error.code };
  if (error.type !== undefined) upstream.type = error.type;
  if (error.error_subcode !== undefined) upstream.subcode = error.error_subcode;
  if (error.fbtrace_id !== undefined) upstream.fbtrace_id = error.fbtrace_id;

  const said = error.message ? ` Graph API said: "${redact(error.message, token)}"` : '';
  return new UpstreamError(`${adviceFor(error.code)}${said}`, upstream);
}

function adviceFor(code: number): string {
  if (code === GRAPH_CODE_INVALID_TOKEN) {
    return 'The page access token is invalid or expired: issue a new page access token for this page and configure it.';
  }
  if (code === GRAPH_CODE_PERMISSION || (code >= 200 && code <= 299)) {
    return 'The page access token lacks a permission the Messenger Code API needs: grant the app pages_messaging on this page and issue a new token.';
  }
  if (code === GRAPH_CODE_INVALID_PARAMETER) {
    return 'The Messenger Code API rejected a parameter: check the image size and the ref.';
  }
  if (code === GRAPH_CODE_DEPRECATED) {
    return 'The Messenger Code API is not available (Meta removed it in 2019): use CODE_PROVIDER=local for scannable QR codes.';
  }
  return `The Messenger Code API refused the request (Graph API error ${code}).`;
}

/** Graph messages are not supposed to echo the token, but a message that did must not carry it further. */
function redact(message: string, token: string): string {
  const withoutToken = message.split(token).join('[redacted]').split(encodeURIComponent(token)).join('[redacted]');
  return withoutToken.length > MAX_GRAPH_MESSAGE_CHARS ? `${withoutToken.slice(0, MAX_GRAPH_MESSAGE_CHARS)}…` : withoutToken;
}

function readGraphError(json: unknown): GraphError | undefined {
  const error = isRecord(json) ? json.error : undefined;
  if (!isRecord(error) || typeof error.code !== 'number') return undefined;
  return {
    code: error.code,
    message: typeof error.message === 'string' ? error.message : undefined,
    type: typeof error.type === 'string' ? error.type : undefined,
    error_subcode: typeof error.error_subcode === 'number' ? error.error_subcode : undefined,
    fbtrace_id: typeof error.fbtrace_id === 'string' ? error.fbtrace_id : undefined,
    is_transient: error.is_transient === true,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
