/**
 * The only reader of process.env. Everything is parsed and validated before the
 * server listens; a bad value becomes one ConfigError line naming the variable.
 */

export type DatabaseConfig =
  | {
      kind: 'sqlite';
      /** a file path or ':memory:' */
      path: string;
      /** DATABASE_BUSY_TIMEOUT_MS: how long a write waits for another process's lock on the file before it fails */
      busyTimeoutMs?: number;
    }
  | {
      kind: 'postgres';
      url: string;
      /** from `?schema=`; tables live there instead of public */
      schema?: string;
      /** DATABASE_CONNECT_TIMEOUT_MS: opening a connection, or waiting for one of the pool's */
      connectTimeoutMs?: number;
      /** DATABASE_QUERY_TIMEOUT_MS: one statement's answer (migrations aside); 0: no limit */
      queryTimeoutMs?: number;
    };

export type CodeProviderName = 'local' | 'facebook';

export interface GatewayConfig {
  port: number;
  host: string;
  /** From PUBLIC_URL; when unset, http://localhost:<the port actually bound>. */
  publicUrl: string | undefined;
  production: boolean;
  database: DatabaseConfig;
  redisUrl: string | undefined;
  /**
   * REDIS_PREFIX: what this deployment's channel and keys on Redis begin with. Instances of
   * one deployment share it; deployments sharing one Redis server each need their own (else
   * each would take the other's scans for its own, or share its rate budgets).
   */
  redisPrefix: string;
  codeProvider: CodeProviderName;
  graphApiUrl: string;
  graphApiVersion: string;
  graphApiTimeoutMs: number;
  graphApiMaxAttempts: number;
  /** Page used when a request names none; the demo page when PAGE_ID is unset. */
  defaultPageId: string;
  pageAccessToken: string | undefined;
  /** ENCRYPTION_KEY: the 32-byte key page tokens are encrypted under; without it no token is stored. */
  encryptionKey: Buffer | undefined;
  /** ENCRYPTION_KEY_PREVIOUS: older keys, still accepted for decryption (tokens are then re-encrypted). */
  previousEncryptionKeys: Buffer[];
  appSecret: string | undefined;
  /**
   * Key of the hash that replaces PSIDs (PSID_HASH_KEY; derived from APP_SECRET when
   * unset). It must stay stable: redeliveries and unique people are recognised by it.
   */
  psidHashKey: string | undefined;
  webhookVerifyToken: string | undefined;
  codeImageHosts: string[];
  adminApiKey: string | undefined;
  introspection: boolean;
  /**
   * Largest webhook body accepted (WEBHOOK_MAX_BYTES). Meta batches up to 1,000 events;
   * the default holds 1,000 referrals with refs of the full 2,083 characters.
   */
  webhookMaxBytes: number;
  /** Bytes of webhook bodies held at once, all requests together (WEBHOOK_MAX_INFLIGHT_BYTES): 503 beyond. */
  webhookMaxInflightBytes: number;
  /** Time to receive one webhook body (WEBHOOK_RECEIVE_TIMEOUT_MS): 408 and the connection closed beyond. */
  webhookReceiveTimeoutMs: number;
  /** LOG_LEVEL: debug, info, warn, error or silent. */
  logLevel: LogLevel;
  /** GENERATE_RATE_LIMIT: codes one key may generate a minute (a series counts each of its codes). */
  generateRateLimit: number;
  /** METRICS_TOKEN: a bearer token accepted by /metrics besides ADMIN_API_KEY. */
  metricsToken: string | undefined;
  /** Messages queued for one subscriber before it is disconnected as too slow (SUBSCRIBER_MAX_BACKLOG). */
  subscriberMaxBacklog: number;
  /**
   * CORS_ORIGINS: the browser origins (as browsers send them in Origin) allowed to call
   * /graphql from another origin; '*' for any; empty (the default) for none.
   */
  corsOrigins: string[] | '*';
  /** RELAY_URL and the delivery of relayed webhooks (see src/relay). */
  relay: RelayConfig;
}

export interface RelayConfig {
  /** RELAY_URL: where verified webhook requests are relayed, unless their page has a relayUrl of its own. */
  url: string | undefined;
  /** RELAY_TIMEOUT_MS: one delivery attempt, connection to response headers; past it the attempt failed. */
  timeoutMs: number;
  /**
   * RELAY_LEASE_MS: how long a delivery claimed by a process is its own; when that process dies
   * mid-delivery, the delivery is sent again (by any process) once this is over. It outlives any
   * attempt (at least 2 × RELAY_TIMEOUT_MS), so a live process never loses its deliveries.
   */
  leaseMs: number;
  /** RELAY_CONCURRENCY: deliveries in flight at once from one process, all bots together. */
  concurrency: number;
  /** RELAY_CONCURRENCY_PER_URL: of those, at most this many to one bot, so a hanging bot cannot hold every slot. */
  concurrencyPerUrl: number;
  /** RELAY_RETRY_BASE_MS: delay before the first retry; each next one doubles (with jitter) up to RELAY_RETRY_MAX_MS. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** RELAY_GIVE_UP_AFTER_MS: a delivery not accepted this long after its webhook is given up (kept RELAY_KEEP_GIVEN_UP_MS, counted, logged). */
  giveUpAfterMs: number;
  /** RELAY_POLL_MS: how often each process looks for due deliveries (its own webhooks wake it at once). */
  pollMs: number;
  /** RELAY_KEEP_DELIVERED_MS: delivered rows are deleted this long after their delivery. */
  keepDeliveredMs: number;
  /** RELAY_KEEP_GIVEN_UP_MS: given-up rows (with their bodies) are deleted this long after they were given up. */
  keepGivenUpMs: number;
}

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Shown when PAGE_ID is unset, so a fresh install works without a Facebook page. */
export const DEMO_PAGE_ID = '100000000000000';

/** SQLite: how long a write waits for another process's lock when DATABASE_BUSY_TIMEOUT_MS is not given. */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** What the channel and keys on Redis begin with when REDIS_PREFIX is unset. */
const DEFAULT_REDIS_PREFIX = 'messenger-code-gateway:';

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`);
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  return raw as T;
}

function httpUrl(name: string, raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(name, `must be an http(s) URL, got "${raw}"`);
  }
  return raw.replace(/\/+$/, '');
}

/** An absolute http(s) URL kept exactly as written (a bot's path may need its trailing slash). */
function relayUrl(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be an absolute http(s) URL, got "${raw}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(name, `must be an http(s) URL, got "${raw}"`);
  return raw;
}

const HOUR_MS = 3_600_000;

function parseRelay(env: Env): RelayConfig {
  const retryBaseMs = integer(env, 'RELAY_RETRY_BASE_MS', 5_000, 1, HOUR_MS);
  const retryMaxMs = integer(env, 'RELAY_RETRY_MAX_MS', 30 * 60_000, 1, 24 * HOUR_MS);
  if (retryMaxMs < retryBaseMs) throw new ConfigError('RELAY_RETRY_MAX_MS', `must not be below RELAY_RETRY_BASE_MS (${retryBaseMs})`);
  const timeoutMs = integer(env, 'RELAY_TIMEOUT_MS', 10_000, 100, 120_000);
  const leaseMs = integer(env, 'RELAY_LEASE_MS', timeoutMs * 2 + 30_000, 1, 24 * HOUR_MS);
  if (leaseMs < timeoutMs * 2) {
    throw new ConfigError(
      'RELAY_LEASE_MS',
      `must be at least twice RELAY_TIMEOUT_MS (${timeoutMs * 2}), so that a delivery outlives its attempt`,
    );
  }
  return {
    url: relayUrl('RELAY_URL', optional(env, 'RELAY_URL')),
    timeoutMs,
    leaseMs,
    concurrency: integer(env, 'RELAY_CONCURRENCY', 32, 1, 1_000),
    concurrencyPerUrl: integer(env, 'RELAY_CONCURRENCY_PER_URL', 8, 1, 1_000),
    retryBaseMs,
    retryMaxMs,
    giveUpAfterMs: integer(env, 'RELAY_GIVE_UP_AFTER_MS', 36 * HOUR_MS, 1, 30 * 24 * HOUR_MS),
    pollMs: integer(env, 'RELAY_POLL_MS', 1_000, 10, 60_000),
    keepDeliveredMs: integer(env, 'RELAY_KEEP_DELIVERED_MS', 24 * HOUR_MS, 0, 365 * 24 * HOUR_MS),
    keepGivenUpMs: integer(env, 'RELAY_KEEP_GIVEN_UP_MS', 7 * 24 * HOUR_MS, 0, 365 * 24 * HOUR_MS),
  };
}

/**
 * CORS_ORIGINS: `*` alone, or comma-separated origins (http(s), a host, an optional port, no
 * path), each kept as a browser serializes it in Origin (`https://App.example.com:443/` is
 * `https://app.example.com`) so a plain string comparison matches.
 */
function parseCorsOrigins(name: string, raw: string | undefined): string[] | '*' {
  if (raw === undefined) return [];
  const items = raw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
  if (items.includes('*')) {
    if (items.length > 1) throw new ConfigError(name, 'is `*` alone or a list of origins, not both');
    return '*';
  }
  const origins = items.map((item) => {
    let url: URL;
    try {
      url = new URL(item);
    } catch {
      throw new ConfigError(name, `has an invalid origin "${item}" (scheme, host and optional port, e.g. https://app.example.com)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigError(name, `has an origin that is not http(s): "${item}"`);
    }
    if (
      !/^https?:\/\/[^/?#]+\/?$/i.test(item) ||
      url.username !== '' ||
      url.password !== '' ||
      !/^([a-z0-9.-]+|\[[0-9a-f:.]+\])$/.test(url.hostname)
    ) {
      throw new ConfigError(name, `has "${item}", not an origin: scheme, host and optional port only (no path, query or user)`);
    }
    return url.origin;
  });
  return [...new Set(origins)];
}

function parseDatabase(env: Env, raw: string): DatabaseConfig {
  if (raw.startsWith('sqlite:')) {
    const path = raw.slice('sqlite:'.length);
    if (path === '') throw new ConfigError('DATABASE_URL', 'needs a path after "sqlite:" (or sqlite::memory:)');
    return {
      kind: 'sqlite',
      path,
      busyTimeoutMs: integer(env, 'DATABASE_BUSY_TIMEOUT_MS', DEFAULT_SQLITE_BUSY_TIMEOUT_MS, 0, 10 * 60_000),
    };
  }
  if (raw.startsWith('postgres://') || raw.startsWith('postgresql://')) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid postgres:// URL');
    }
    const schema = url.searchParams.get('schema') ?? undefined;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new ConfigError('DATABASE_URL', `has an invalid schema name "${schema}"`);
    }
    url.searchParams.delete('schema');
    return {
      kind: 'postgres',
      url: url.toString(),
      ...(schema ? { schema } : {}),
      connectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5_000, 100, 10 * 60_000),
      queryTimeoutMs: integer(env, 'DATABASE_QUERY_TIMEOUT_MS', 30_000, 0, HOUR_MS),
    };
  }
  throw new ConfigError('DATABASE_URL', `must start with sqlite: or postgres://, got "${raw.split(':')[0]}:…"`);
}

function parseHostList(name: string, raw: string): string[] {
  const hosts = raw
    .split(',')
    .map((host) => host.trim().toLowerCase().replace(/^\.+/, ''))
    .filter((host) => host !== '');
  for (const host of hosts) {
    // `host` (port 443) or `host:port`.
    const match = /^[a-z0-9.-]+(?::(\d{1,5}))?$/.exec(host);
    if (!match) throw new ConfigError(name, `has an invalid host name "${host}" (a host, or host:port)`);
    if (match[1] !== undefined && (Number(match[1]) < 1 || Number(match[1]) > 65535)) {
      throw new ConfigError(name, `has an invalid port in "${host}"`);
    }
  }
  return hosts;
}

/**
 * A 32-byte AES key as 64 hex characters or base64 (standard or URL-safe). The value is a
 * secret: errors say what is wrong with it, never what it is.
 */
function parseEncryptionKey(name: string, raw: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(raw)) return Buffer.from(raw, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) {
    const key = Buffer.from(raw, 'base64');
    if (key.length === 32) return key;
    throw new ConfigError(name, `must be 32 bytes (64 hex characters or base64, e.g. \`openssl rand -hex 32\`), got ${key.length} bytes`);
  }
  throw new ConfigError(name, 'must be 32 bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)');
}

function parseEncryptionKeys(env: Env): { current: Buffer | undefined; previous: Buffer[] } {
  const currentRaw = optional(env, 'ENCRYPTION_KEY');
  const current = currentRaw === undefined ? undefined : parseEncryptionKey('ENCRYPTION_KEY', currentRaw);
  const previousRaw = optional(env, 'ENCRYPTION_KEY_PREVIOUS');
  if (previousRaw === undefined) return { current, previous: [] };
  if (current === undefined) {
    throw new ConfigError('ENCRYPTION_KEY_PREVIOUS', 'needs ENCRYPTION_KEY: tokens are re-encrypted under it');
  }
  const previous = previousRaw
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .map((item) => parseEncryptionKey('ENCRYPTION_KEY_PREVIOUS', item));
  return { current, previous };
}

export function loadConfig(env: Env = process.env): GatewayConfig {
  const port = integer(env, 'PORT', 4000, 0, 65535);
  const codeProviderRaw = (optional(env, 'CODE_PROVIDER') ?? 'local').toLowerCase();
  if (codeProviderRaw !== 'local' && codeProviderRaw !== 'facebook') {
    throw new ConfigError('CODE_PROVIDER', `must be "local" or "facebook", got "${codeProviderRaw}"`);
  }
  const pageAccessToken = optional(env, 'PAGE_ACCESS_TOKEN');
  if (codeProviderRaw === 'facebook' && pageAccessToken === undefined) {
    throw new ConfigError('PAGE_ACCESS_TOKEN', 'is required when CODE_PROVIDER=facebook');
  }
  const pageId = optional(env, 'PAGE_ID');
  if (pageId !== undefined && !/^\d{1,32}$/.test(pageId)) {
    throw new ConfigError('PAGE_ID', `must be the numeric id of a Facebook page, got "${pageId}"`);
  }
  if (codeProviderRaw === 'facebook' && pageId === undefined) {
    throw new ConfigError('PAGE_ID', 'is required when CODE_PROVIDER=facebook (the page of PAGE_ACCESS_TOKEN)');
  }
  const encryptionKeys = parseEncryptionKeys(env);
  const redisPrefix = optional(env, 'REDIS_PREFIX') ?? DEFAULT_REDIS_PREFIX;
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(redisPrefix)) {
    throw new ConfigError('REDIS_PREFIX', `must be 1 to 64 letters, digits or ":._-", got "${redisPrefix}"`);
  }
  const graphApiVersion = optional(env, 'GRAPH_API_VERSION') ?? 'v2.6';
  if (!/^v\d+\.\d+$/.test(graphApiVersion)) {
    throw new ConfigError('GRAPH_API_VERSION', `must look like v2.6, got "${graphApiVersion}"`);
  }

  return {
    port,
    host: optional(env, 'HOST') ?? '0.0.0.0',
    publicUrl: optional(env, 'PUBLIC_URL') === undefined ? undefined : httpUrl('PUBLIC_URL', optional(env, 'PUBLIC_URL') as string),
    production: env.NODE_ENV === 'production',
    database: parseDatabase(env, optional(env, 'DATABASE_URL') ?? 'sqlite:./data/gateway.sqlite'),
    redisUrl: optional(env, 'REDIS_URL'),
    redisPrefix,
    codeProvider: codeProviderRaw,
    graphApiUrl: httpUrl('GRAPH_API_URL', optional(env, 'GRAPH_API_URL') ?? 'https://graph.facebook.com'),
    graphApiVersion,
    graphApiTimeoutMs: integer(env, 'GRAPH_API_TIMEOUT_MS', 10_000, 100, 120_000),
    graphApiMaxAttempts: integer(env, 'GRAPH_API_MAX_ATTEMPTS', 3, 1, 10),
    defaultPageId: pageId ?? DEMO_PAGE_ID,
    pageAccessToken,
    encryptionKey: encryptionKeys.current,
    previousEncryptionKeys: encryptionKeys.previous,
    appSecret: optional(env, 'APP_SECRET'),
    psidHashKey: optional(env, 'PSID_HASH_KEY'),
    webhookVerifyToken: optional(env, 'WEBHOOK_VERIFY_TOKEN'),
    codeImageHosts: parseHostList('CODE_IMAGE_HOSTS', optional(env, 'CODE_IMAGE_HOSTS') ?? 'fbcdn.net,facebook.com'),
    adminApiKey: optional(env, 'ADMIN_API_KEY'),
    introspection: boolean(env, 'GRAPHQL_INTROSPECTION', true),
    webhookMaxBytes: integer(env, 'WEBHOOK_MAX_BYTES', 2.5 * 1024 * 1024, 1024, 64 * 1024 * 1024),
    webhookMaxInflightBytes: integer(env, 'WEBHOOK_MAX_INFLIGHT_BYTES', 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    webhookReceiveTimeoutMs: integer(env, 'WEBHOOK_RECEIVE_TIMEOUT_MS', 10_000, 100, 120_000),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    metricsToken: optional(env, 'METRICS_TOKEN'),
    subscriberMaxBacklog: integer(env, 'SUBSCRIBER_MAX_BACKLOG', 10_000, 1, 1_000_000),
    corsOrigins: parseCorsOrigins('CORS_ORIGINS', optional(env, 'CORS_ORIGINS')),
    generateRateLimit: integer(env, 'GENERATE_RATE_LIMIT', 1000, 1, 1_000_000),
    relay: parseRelay(env),
  };
}
