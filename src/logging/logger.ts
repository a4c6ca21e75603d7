import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config';

export type { Logger } from 'pino';
export type { LogLevel } from '../config';

/**
 * Values that must never reach a log line, by path: credentials in headers and in
 * objects handed to the logger, and the PSIDs that identify people. Redaction is the
 * safety net; callers still pass no personal data on purpose.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-hub-signature-256"]',
  'req.headers["x-hub-signature"]',
  'authorization',
  'accessToken',
  'pageAccessToken',
  'apiKey',
  'token',
  'secret',
  'psid',
  'senderPsid',
  '*.authorization',
  '*.accessToken',
  '*.pageAccessToken',
  '*.apiKey',
  '*.token',
  '*.secret',
  '*.psid',
  '*.senderPsid',
];

/** Query parameters whose values are secrets (the webhook handshake's token, Graph-style access tokens). */
const SECRET_QUERY_PARAMETER = /token|key|secret|signature|password/i;

/** A URL as it may be logged: the values of secret query parameters replaced. */
export function redactUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  const query = new URLSearchParams(url.slice(queryStart + 1));
  let changed = false;
  for (const name of [...query.keys()]) {
    if (SECRET_QUERY_PARAMETER.test(name)) {
      query.set(name, '[redacted]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, queryStart)}?${query.toString()}` : url;
}

export interface LoggerOptions {
  level: LogLevel;
  /** where the JSON lines go; default: stdout, written asynchronously (flushed at exit) */
  destination?: DestinationStream;
}

/**
 * The gateway's logger (pino, also Fastify's): one JSON object per line with `time`
 * (ISO-8601), `level` as a word, `message`, and `reqId` on every line of a request.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: undefined,
      messageKey: 'message',
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        // Fastify's request line: no headers, and a URL without secrets.
        req: (request: { method?: string; url?: string; ip?: string }) => ({
          method: request.method,
          url: request.url === undefined ? undefined : redactUrl(request.url),
          remoteAddress: request.ip,
        }),
        err: pino.stdSerializers.err,
      },
    },
    // Asynchronous: a log line never waits for the terminal or the pipe on a hot path.
    // minLength 1 still writes every line at once, and makes flush(cb) wait for the write
    // in flight (with 0 it returns at once, and a line written at exit could overtake it).
    options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 1 }),
  );
}
