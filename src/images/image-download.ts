import { isIP } from 'node:net';
import { UpstreamError, UpstreamUnavailableError } from '../errors';
import { sniffImage, type SniffedContentType } from './image-sniff';

export interface DownloadImageOptions {
  /**
   * Hosts the image (and every redirect) may come from, each with its subdomains, as
   * `host` (port 443 only) or `host:port`.
   */
  allowedHosts: string[];
  /** Budget for the whole download: every redirect hop, headers and body. */
  timeoutMs: number;
  /** Largest body accepted, in bytes. */
  maxBytes: number;
  /** Redirects followed before giving up; 3 unless told. */
  maxRedirects?: number;
}

/** The port an allowed host without one stands for: images are fetched over HTTPS. */
const DEFAULT_ALLOWED_PORT = 443;

export interface DownloadedImage {
  bytes: Buffer;
  contentType: SniffedContentType;
  width: number;
  height: number;
}

const DEFAULT_MAX_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * Downloads a PNG or JPEG from an allowed host.
 *
 * The URL comes from a remote service, so everything about it is checked here rather than
 * trusted: the scheme, the host of every redirect hop (fetch would follow redirects anywhere),
 * the size while streaming (Content-Length may be absent or wrong) and the bytes themselves
 * (the Content-Type header proves nothing).
 *
 * Throws UpstreamError when retrying cannot help (refused URL, 4xx, not an image, too large)
 * and UpstreamUnavailableError when it might (5xx, network failure, timeout).
 * Messages name the host only: image URLs carry signatures that do not belong in logs.
 */
export async function downloadImage(url: string, options: DownloadImageOptions): Promise<DownloadedImage> {
  const maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  const allowedHosts = options.allowedHosts.map((host) => host.trim().toLowerCase()).filter((host) => host !== '');
  // One signal for the whole download, so a server that trickles its body cannot hold us past the budget.
  const signal = AbortSignal.timeout(options.timeoutMs);

  let target = checkUrl(url, allowedHosts);
  for (let redirectsFollowed = 0; ; redirectsFollowed++) {
    const response = await fetchOrExplain(target, signal, options.timeoutMs);

    if (REDIRECT_STATUSES.has(response.status)) {
      await discardBody(response);
      const location = response.headers.get('location');
      if (location === null) {
        throw new UpstreamError(`The image host ${target.hostname} answered a redirect without a Location.`);
      }
      if (redirectsFollowed >= maxRedirects) {
        throw new UpstreamError(`The image host ${target.hostname} redirected more than ${maxRedirects} times.`);
      }
      target = checkUrl(location, allowedHosts, target);
      continue;
    }

    if (response.status >= 500) {
      await discardBody(response);
      throw new UpstreamUnavailableError(`The image host ${target.hostname} failed with HTTP ${response.status}; try again later.`);
    }
    if (response.status < 200 || response.status >= 300) {
      await discardBody(response);
      throw new UpstreamError(`The image host ${target.hostname} answered HTTP ${response.status} for the code image.`);
    }

    const bytes = await readCappedBody(response, target.hostname, options, signal);
    const sniffed = sniffImage(bytes);
    if (sniffed === null) {
      throw new UpstreamError(`The file from ${target.hostname} is not a complete PNG or JPEG image.`);
    }
    return { bytes, ...sniffed };
  }
}

/**
 * True when `hostname` is one of `allowedHosts` or a subdomain of one: `fbcdn.net` allows
 * `scontent.xx.fbcdn.net` but not `evilfbcdn.net`. IP addresses only match exactly, since
 * "a subdomain of 0.0.1" would otherwise let in 127.0.0.1.
 */
export function isAllowedHost(hostname: string, allowedHosts: readonly string[]): boolean {
  const host = normalizeHostname(hostname);
  if (host === '') return false;
  const hostIsAddress = isIP(host.replace(/^\[|\]$/g, '')) !== 0;
  return allowedHosts.some((allowedRaw) => {
    const allowed = normalizeHostname(allowedRaw);
    if (allowed === '') return false;
    if (host === allowed) return true;
    return !hostIsAddress && host.endsWith(`.${allowed}`);
  });
}

/** Lower case without the trailing dot of a fully qualified name, so `FBCDN.net.` equals `fbcdn.net`. */
function normalizeHostname(hostname: string): string {
  return hostname.trim().toLowerCase().replace(/\.$/, '');
}

/** The port a URL connects to: its own, else its scheme's. */
export function effectivePort(url: URL): number {
  return url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
}

/** An allowed `host` or `host:port` (an IPv6 address in brackets), its port 443 when not given. */
function splitHostPort(allowed: string): { hostname: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(allowed.trim());
  if (!match) return { hostname: '', port: DEFAULT_ALLOWED_PORT };
  return { hostname: match[1], port: match[2] === undefined ? DEFAULT_ALLOWED_PORT : Number(match[2]) };
}

/**
 * True when the URL's host is allowed (as isAllowedHost) on the URL's port: an entry
 * without a port allows 443 only, so `fbcdn.net` does not let in `fbcdn.net:8080` nor
 * plain HTTP on port 80.
 */
export function isAllowedOrigin(url: URL, allowedHosts: readonly string[]): boolean {
  const port = effectivePort(url);
  return allowedHosts.some((entry) => {
    const allowed = splitHostPort(entry);
    return allowed.port === port && isAllowedHost(url.hostname, [allowed.hostname]);
  });
}

function checkUrl(raw: string, allowedHosts: readonly string[], redirectedFrom?: URL): URL {
  let url: URL;
  try {
    url = new URL(raw, redirectedFrom);
  } catch {
    throw new UpstreamError(
      redirectedFrom ? `The image host ${redirectedFrom.hostname} redirected to an invalid URL.` : 'The code image URL is not a valid URL.',
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UpstreamError(`The code image URL uses ${url.protocol} but only http: and https: are downloaded.`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new UpstreamError('The code image URL carries credentials; refusing to download it.');
  }
  if (!isAllowedOrigin(url, allowedHosts)) {
    // The port is named when it is what makes the difference.
    const onOtherPort = isAllowedHost(
      url.hostname,
      allowedHosts.map((entry) => splitHostPort(entry).hostname),
    );
    const name = onOtherPort ? `${url.hostname}:${effectivePort(url)}` : url.hostname;
    const where = redirectedFrom ? `The image host ${redirectedFrom.hostname} redirected to ${name}` : `The code image is on ${name}`;
    throw new UpstreamError(`${where}, which is not an allowed image host (allowed: ${allowedHosts.join(', ')}; see CODE_IMAGE_HOSTS).`);
  }
  return url;
}

async function fetchOrExplain(url: URL, signal: AbortSignal, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { redirect: 'manual', signal });
  } catch (error) {
    throw unavailableBecause(error, url.hostname, signal, timeoutMs);
  }
}

/**
 * The body of a response, or 'too large' as soon as it passes `maxBytes`: by its
 * Content-Length before reading, else counted while streaming (the header may be absent
 * or lie). Network errors while reading are thrown as they come.
 */
export async function readCapped(response: Response, maxBytes: number): Promise<Buffer | 'too large'> {
  const declaredLength = Number(response.headers.get('content-length') ?? Number.NaN);
  if (Number.isFinite(declaredLength) && declaredLength > maxBytes) {
    await discardBody(response);
    return 'too large';
  }
  if (response.body === null) return Buffer.alloc(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received += value.byteLength;
    if (received > maxBytes) {
      await reader.cancel().catch(() => undefined);
      return 'too large';
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, received);
}

async function readCappedBody(response: Response, hostname: string, options: DownloadImageOptions, signal: AbortSignal): Promise<Buffer> {
  let bytes: Buffer | 'too large';
  try {
    bytes = await readCapped(response, options.maxBytes);
  } catch (error) {
    throw unavailableBecause(error, hostname, signal, options.timeoutMs);
  }
  if (bytes === 'too large') throw new UpstreamError(`The image from ${hostname} is larger than the limit of ${options.maxBytes} bytes.`);
  return bytes;
}

function unavailableBecause(error: unknown, hostname: string, signal: AbortSignal, timeoutMs: number): UpstreamUnavailableError {
  if (signal.aborted) {
    return new UpstreamUnavailableError(`The image host ${hostname} did not deliver within ${timeoutMs} ms.`);
  }
  return new UpstreamUnavailableError(`The image host ${hostname} could not be reached (${describeNetworkError(error)}); try again later.`);
}

/**
 * fetch reports every network failure as "fetch failed" and puts the reason in `cause`;
 * its system error code (ECONNREFUSED, ENOTFOUND, ...) says what happened without echoing the URL.
 */
export function describeNetworkError(error: unknown): string {
  // Duck-typed on purpose: errors from fetch may come from another realm (jest's sandbox), where instanceof fails.
  const cause = readProperty(error, 'cause') ?? error;
  const code = readProperty(cause, 'code');
  if (typeof code === 'string') return code;
  const name = readProperty(error, 'name');
  return typeof name === 'string' ? name : 'unknown error';
}

function readProperty(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** Frees the connection of a response whose body we do not want. */
async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}
