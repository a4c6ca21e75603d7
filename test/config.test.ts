import { ConfigError, DEMO_PAGE_ID, loadConfig } from '../src/config';

/** The ConfigError a bad environment raises; fails the test when loadConfig accepts it. */
function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

const FACEBOOK = { CODE_PROVIDER: 'facebook', PAGE_ID: '1234567890', PAGE_ACCESS_TOKEN: 'test-token-config' };

describe('loadConfig', () => {
  it('starts with the embedded defaults on an empty environment', () => {
    // toMatchObject: new variables may add fields; these must keep their defaults.
    expect(loadConfig({})).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      publicUrl: undefined,
      production: false,
      database: { kind: 'sqlite', path: './data/gateway.sqlite' },
      redisUrl: undefined,
      redisPrefix: 'messenger-code-gateway:',
      codeProvider: 'local',
      graphApiUrl: 'https://graph.facebook.com',
      graphApiVersion: 'v2.6',
      graphApiTimeoutMs: 10_000,
      graphApiMaxAttempts: 3,
      defaultPageId: DEMO_PAGE_ID,
      pageAccessToken: undefined,
      appSecret: undefined,
      webhookVerifyToken: undefined,
      codeImageHosts: ['fbcdn.net', 'facebook.com'],
      adminApiKey: undefined,
      introspection: true,
      generateRateLimit: 1000,
    });
  });

  it('treats empty and blank values as unset', () => {
    const config = loadConfig({ PORT: '', HOST: '  ', DATABASE_URL: '', CODE_PROVIDER: ' ', GRAPHQL_INTROSPECTION: '' });
    expect(config).toMatchObject({
      port: 4000,
      host: '0.0.0.0',
      database: { kind: 'sqlite', path: './data/gateway.sqlite' },
      codeProvider: 'local',
      introspection: true,
    });
  });

  it('reads every variable it is given', () => {
    const config = loadConfig({
      PORT: '8080',
      HOST: '127.0.0.1',
      PUBLIC_URL: 'https://codes.example.com/',
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://gateway:secret@db.example.com:5432/gateway?schema=codes_1&sslmode=require',
      DATABASE_CONNECT_TIMEOUT_MS: '2000',
      DATABASE_QUERY_TIMEOUT_MS: '0',
      REDIS_URL: 'redis://cache:6379',
      REDIS_PREFIX: 'codes-staging:',
      ...FACEBOOK,
      CODE_PROVIDER: 'FACEBOOK',
      GRAPH_API_URL: 'http://127.0.0.1:9999/',
      GRAPH_API_VERSION: 'v3.3',
      GRAPH_API_TIMEOUT_MS: '300',
      GRAPH_API_MAX_ATTEMPTS: '5',
      APP_SECRET: 'app-secret',
      WEBHOOK_VERIFY_TOKEN: 'verify-me',
      CODE_IMAGE_HOSTS: ' CDN.Example.com , .fbcdn.net,,',
      ADMIN_API_KEY: 'admin-key',
      GRAPHQL_INTROSPECTION: 'false',
      GENERATE_RATE_LIMIT: '250',
    });
    expect(config).toMatchObject({
      port: 8080,
      host: '127.0.0.1',
      publicUrl: 'https://codes.example.com',
      production: true,
      database: {
        kind: 'postgres',
        url: 'postgres://gateway:secret@db.example.com:5432/gateway?sslmode=require',
        schema: 'codes_1',
        connectTimeoutMs: 2_000,
        queryTimeoutMs: 0,
      },
      redisUrl: 'redis://cache:6379',
      redisPrefix: 'codes-staging:',
      codeProvider: 'facebook',
      graphApiUrl: 'http://127.0.0.1:9999',
      graphApiVersion: 'v3.3',
      graphApiTimeoutMs: 300,
      graphApiMaxAttempts: 5,
      defaultPageId: '1234567890',
      pageAccessToken: 'test-token-config',
      appSecret: 'app-secret',
      webhookVerifyToken: 'verify-me',
      codeImageHosts: ['cdn.example.com', 'fbcdn.net'],
      adminApiKey: 'admin-key',
      introspection: false,
      generateRateLimit: 250,
    });
  });

  it.each([
    // SQLite: a write waits 5 s for another process's lock on the file by default.
    ['sqlite::memory:', { kind: 'sqlite', path: ':memory:', busyTimeoutMs: 5_000 }],
    ['sqlite:/var/lib/gateway/codes.sqlite', { kind: 'sqlite', path: '/var/lib/gateway/codes.sqlite', busyTimeoutMs: 5_000 }],
    // PostgreSQL's timeouts by default: 5 s to get a connection, 30 s for a statement's answer.
    ['postgres://u@h/db', { kind: 'postgres', url: 'postgres://u@h/db', connectTimeoutMs: 5_000, queryTimeoutMs: 30_000 }],
    [
      'postgresql://u@h:5433/db?schema=_private',
      { kind: 'postgres', url: 'postgresql://u@h:5433/db', schema: '_private', connectTimeoutMs: 5_000, queryTimeoutMs: 30_000 },
    ],
  ])('reads DATABASE_URL %s', (url, database) => {
    expect(loadConfig({ DATABASE_URL: url }).database).toStrictEqual(database);
  });

  it('reads DATABASE_BUSY_TIMEOUT_MS for SQLite (0: a locked file fails the write at once)', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite:/tmp/x.sqlite', DATABASE_BUSY_TIMEOUT_MS: '250' }).database).toStrictEqual({
      kind: 'sqlite',
      path: '/tmp/x.sqlite',
      busyTimeoutMs: 250,
    });
    expect(loadConfig({ DATABASE_BUSY_TIMEOUT_MS: '0' }).database).toMatchObject({ busyTimeoutMs: 0 });
  });

  it.each([
    ['true', true],
    ['TRUE', true],
    ['1', true],
    ['yes', true],
    ['on', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['Off', false],
  ])('reads GRAPHQL_INTROSPECTION %s as %s', (raw, expected) => {
    expect(loadConfig({ GRAPHQL_INTROSPECTION: raw }).introspection).toBe(expected);
  });

  it('keeps introspection on in production unless told otherwise', () => {
    expect(loadConfig({ NODE_ENV: 'production' })).toMatchObject({ production: true, introspection: true });
  });

  it.each([
    ['1', 1],
    [' 1000000 ', 1_000_000],
    ['', 1000],
    ['  ', 1000],
  ])('reads GENERATE_RATE_LIMIT %j as %i codes a minute per key', (raw, expected) => {
    expect(loadConfig({ GENERATE_RATE_LIMIT: raw }).generateRateLimit).toBe(expected);
  });

  it('says what GENERATE_RATE_LIMIT takes when refused', () => {
    expect(configErrorOf({ GENERATE_RATE_LIMIT: 'plenty' }).message).toBe(
      'Invalid configuration: GENERATE_RATE_LIMIT must be a whole number, got "plenty"',
    );
    expect(configErrorOf({ GENERATE_RATE_LIMIT: '0' }).message).toMatch(
      /^Invalid configuration: GENERATE_RATE_LIMIT must be between 1 and \d+, got 0$/,
    );
  });

  it.each(['0', '1', '65535'])('accepts PORT %s', (port) => {
    expect(loadConfig({ PORT: port }).port).toBe(Number(port));
  });

  const bad: { name: string; env: Record<string, string>; variable: string }[] = [
    { name: 'PORT not a number', env: { PORT: 'abc' }, variable: 'PORT' },
    { name: 'PORT above 65535', env: { PORT: '70000' }, variable: 'PORT' },
    { name: 'PORT negative', env: { PORT: '-1' }, variable: 'PORT' },
    { name: 'PORT with a fraction', env: { PORT: '4000.5' }, variable: 'PORT' },
    { name: 'PORT with a unit', env: { PORT: '4000px' }, variable: 'PORT' },
    { name: 'an unknown CODE_PROVIDER', env: { CODE_PROVIDER: 'magic' }, variable: 'CODE_PROVIDER' },
    {
      name: 'facebook without PAGE_ACCESS_TOKEN',
      env: { CODE_PROVIDER: 'facebook', PAGE_ID: '1234567890' },
      variable: 'PAGE_ACCESS_TOKEN',
    },
    {
      name: 'facebook with a blank PAGE_ACCESS_TOKEN',
      env: { CODE_PROVIDER: 'facebook', PAGE_ID: '1234567890', PAGE_ACCESS_TOKEN: '   ' },
      variable: 'PAGE_ACCESS_TOKEN',
    },
    { name: 'DATABASE_URL of another database', env: { DATABASE_URL: 'mysql://x' }, variable: 'DATABASE_URL' },
    { name: 'DATABASE_URL of a bare path', env: { DATABASE_URL: './data/gateway.sqlite' }, variable: 'DATABASE_URL' },
    { name: 'DATABASE_URL sqlite without a path', env: { DATABASE_URL: 'sqlite:' }, variable: 'DATABASE_URL' },
    {
      name: 'DATABASE_URL postgres with an upper-case schema',
      env: { DATABASE_URL: 'postgres://u@h/db?schema=Codes' },
      variable: 'DATABASE_URL',
    },
    {
      name: 'DATABASE_URL postgres with an injected schema',
      env: { DATABASE_URL: 'postgres://u@h/db?schema=public;drop%20table%20code' },
      variable: 'DATABASE_URL',
    },
    {
      name: 'DATABASE_URL postgres with a schema starting with a digit',
      env: { DATABASE_URL: 'postgres://u@h/db?schema=1abc' },
      variable: 'DATABASE_URL',
    },
    {
      name: 'DATABASE_CONNECT_TIMEOUT_MS of 0',
      env: { DATABASE_URL: 'postgres://u@h/db', DATABASE_CONNECT_TIMEOUT_MS: '0' },
      variable: 'DATABASE_CONNECT_TIMEOUT_MS',
    },
    { name: 'REDIS_PREFIX with a brace', env: { REDIS_PREFIX: 'codes{prod}:' }, variable: 'REDIS_PREFIX' },
    { name: 'REDIS_PREFIX with a space', env: { REDIS_PREFIX: 'codes prod:' }, variable: 'REDIS_PREFIX' },
    { name: 'REDIS_PREFIX of 65 characters', env: { REDIS_PREFIX: 'p'.repeat(65) }, variable: 'REDIS_PREFIX' },
    { name: 'DATABASE_BUSY_TIMEOUT_MS not a number', env: { DATABASE_BUSY_TIMEOUT_MS: '5s' }, variable: 'DATABASE_BUSY_TIMEOUT_MS' },
    { name: 'DATABASE_BUSY_TIMEOUT_MS negative', env: { DATABASE_BUSY_TIMEOUT_MS: '-1' }, variable: 'DATABASE_BUSY_TIMEOUT_MS' },
    {
      name: 'DATABASE_QUERY_TIMEOUT_MS not a number',
      env: { DATABASE_URL: 'postgres://u@h/db', DATABASE_QUERY_TIMEOUT_MS: '30s' },
      variable: 'DATABASE_QUERY_TIMEOUT_MS',
    },
    { name: 'PUBLIC_URL not a URL', env: { PUBLIC_URL: 'not a url' }, variable: 'PUBLIC_URL' },
    { name: 'PUBLIC_URL not http(s)', env: { PUBLIC_URL: 'ftp://codes.example.com' }, variable: 'PUBLIC_URL' },
    { name: 'GRAPH_API_URL not a URL', env: { GRAPH_API_URL: 'graph.facebook.com' }, variable: 'GRAPH_API_URL' },
    { name: 'GRAPHQL_INTROSPECTION neither true nor false', env: { GRAPHQL_INTROSPECTION: 'maybe' }, variable: 'GRAPHQL_INTROSPECTION' },
    { name: 'GRAPH_API_VERSION without its v', env: { GRAPH_API_VERSION: '2.6' }, variable: 'GRAPH_API_VERSION' },
    { name: 'GRAPH_API_VERSION with a path', env: { GRAPH_API_VERSION: 'v2.6/../x' }, variable: 'GRAPH_API_VERSION' },
    { name: 'GRAPH_API_TIMEOUT_MS not a number', env: { GRAPH_API_TIMEOUT_MS: 'soon' }, variable: 'GRAPH_API_TIMEOUT_MS' },
    { name: 'GRAPH_API_MAX_ATTEMPTS of 0', env: { GRAPH_API_MAX_ATTEMPTS: '0' }, variable: 'GRAPH_API_MAX_ATTEMPTS' },
    { name: 'GENERATE_RATE_LIMIT not a number', env: { GENERATE_RATE_LIMIT: 'plenty' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'GENERATE_RATE_LIMIT of 0', env: { GENERATE_RATE_LIMIT: '0' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'GENERATE_RATE_LIMIT above 1000000', env: { GENERATE_RATE_LIMIT: '1000001' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'GENERATE_RATE_LIMIT negative', env: { GENERATE_RATE_LIMIT: '-10' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'GENERATE_RATE_LIMIT with a fraction', env: { GENERATE_RATE_LIMIT: '2.5' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'GENERATE_RATE_LIMIT with a unit', env: { GENERATE_RATE_LIMIT: '1000/min' }, variable: 'GENERATE_RATE_LIMIT' },
    { name: 'PAGE_ID not numeric', env: { PAGE_ID: 'abc' }, variable: 'PAGE_ID' },
    { name: 'PAGE_ID with a path', env: { PAGE_ID: '123/feed' }, variable: 'PAGE_ID' },
    { name: 'CODE_IMAGE_HOSTS with a space in a host', env: { CODE_IMAGE_HOSTS: 'fbcdn.net,evil host.com' }, variable: 'CODE_IMAGE_HOSTS' },
    {
      name: 'CODE_IMAGE_HOSTS with a URL instead of a host',
      env: { CODE_IMAGE_HOSTS: 'https://cdn.example.com' },
      variable: 'CODE_IMAGE_HOSTS',
    },
    { name: 'CODE_IMAGE_HOSTS with a wildcard', env: { CODE_IMAGE_HOSTS: '*.fbcdn.net' }, variable: 'CODE_IMAGE_HOSTS' },
    { name: 'CODE_IMAGE_HOSTS with port 0', env: { CODE_IMAGE_HOSTS: 'cdn.example.com:0' }, variable: 'CODE_IMAGE_HOSTS' },
    { name: 'CODE_IMAGE_HOSTS with a port above 65535', env: { CODE_IMAGE_HOSTS: 'cdn.example.com:70000' }, variable: 'CODE_IMAGE_HOSTS' },
    { name: 'CODE_IMAGE_HOSTS with an empty port', env: { CODE_IMAGE_HOSTS: 'cdn.example.com:' }, variable: 'CODE_IMAGE_HOSTS' },
  ];

  it('takes CODE_IMAGE_HOSTS entries with a port (an entry without one stands for 443)', () => {
    expect(loadConfig({ CODE_IMAGE_HOSTS: 'cdn.example.com:8443,fbcdn.net' }).codeImageHosts).toEqual([
      'cdn.example.com:8443',
      'fbcdn.net',
    ]);
  });

  it.each(bad)('refuses $name with one line naming $variable', ({ env, variable }) => {
    const error = configErrorOf(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).not.toContain('\n');
    expect(error.message.length).toBeLessThan(300);
  });

  it('does not echo the token of a refused configuration', () => {
    const error = configErrorOf({ CODE_PROVIDER: 'magic', PAGE_ACCESS_TOKEN: 'test-token-secret' });
    expect(error.message).not.toContain('test-token-secret');
  });
});

describe('CORS_ORIGINS', () => {
  it('is empty (no CORS) by default', () => {
    expect(loadConfig({}).corsOrigins).toEqual([]);
    expect(loadConfig({ CORS_ORIGINS: ' , ' }).corsOrigins).toEqual([]);
  });

  it('keeps each origin as a browser sends it in Origin', () => {
    expect(
      loadConfig({ CORS_ORIGINS: ' https://App.Example.com , http://localhost:5173,https://app.example.com:443/,http://[::1]:8080,,' })
        .corsOrigins,
    ).toEqual(['https://app.example.com', 'http://localhost:5173', 'http://[::1]:8080']);
  });

  it('takes `*` for any origin', () => {
    expect(loadConfig({ CORS_ORIGINS: ' * ' }).corsOrigins).toBe('*');
  });

  it.each([
    ['a path', 'https://app.example.com/app'],
    ['a query', 'https://app.example.com?x=1'],
    ['a fragment', 'https://app.example.com#x'],
    ['no scheme', 'app.example.com'],
    ['a host and port without scheme', 'localhost:5173'],
    ['another scheme', 'ftp://app.example.com'],
    ['a user', 'https://user@app.example.com'],
    ['a port above 65535', 'https://app.example.com:70000'],
    ['a wildcard host', 'https://*.example.com'],
    ['`*` among origins', '*,https://app.example.com'],
    ['a bad origin after a good one', 'https://app.example.com,not an origin'],
  ])('refuses %s in one line naming CORS_ORIGINS', (_name, value) => {
    const error = configErrorOf({ CORS_ORIGINS: value });
    expect(error.variable).toBe('CORS_ORIGINS');
    expect(error.message).toContain('CORS_ORIGINS');
    expect(error.message).not.toContain('\n');
  });
});

describe('ENCRYPTION_KEY and ENCRYPTION_KEY_PREVIOUS', () => {
  const hex = 'ab'.repeat(32);
  const base64 = Buffer.alloc(32, 7).toString('base64');

  it('are unset by default', () => {
    expect(loadConfig({})).toMatchObject({ encryptionKey: undefined, previousEncryptionKeys: [] });
  });

  it('take 32 bytes as 64 hex characters or base64', () => {
    const config = loadConfig({ ENCRYPTION_KEY: hex, ENCRYPTION_KEY_PREVIOUS: `${base64}, ${Buffer.alloc(32, 9).toString('base64url')}` });
    expect(config.encryptionKey).toEqual(Buffer.from(hex, 'hex'));
    expect(config.previousEncryptionKeys).toEqual([Buffer.alloc(32, 7), Buffer.alloc(32, 9)]);
  });

  it.each([
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: 'ab'.repeat(16) }],
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: 'not a key!' }],
    ['ENCRYPTION_KEY', { ENCRYPTION_KEY: Buffer.alloc(31).toString('base64') }],
    ['ENCRYPTION_KEY_PREVIOUS', { ENCRYPTION_KEY: 'ab'.repeat(32), ENCRYPTION_KEY_PREVIOUS: 'short' }],
    ['ENCRYPTION_KEY_PREVIOUS', { ENCRYPTION_KEY_PREVIOUS: 'ab'.repeat(32) }],
  ])('refuse a bad %s with one line naming it, without echoing the value', (variable, env) => {
    const error = configErrorOf(env);
    expect(error.variable).toBe(variable);
    expect(error.message).toContain(variable);
    expect(error.message).not.toContain('\n');
    for (const value of Object.values(env)) expect(error.message).not.toContain(value);
  });
});

describe('RELAY_URL and the relay settings', () => {
  it('default to no relay, 36 hours of retries starting at 5 s', () => {
    expect(loadConfig({}).relay).toEqual({
      url: undefined,
      timeoutMs: 10_000,
      leaseMs: 50_000,
      concurrency: 32,
      concurrencyPerUrl: 8,
      retryBaseMs: 5_000,
      retryMaxMs: 1_800_000,
      giveUpAfterMs: 36 * 3_600_000,
      pollMs: 1_000,
      keepDeliveredMs: 24 * 3_600_000,
      keepGivenUpMs: 7 * 24 * 3_600_000,
    });
  });

  it('hold a claimed delivery for 2 × RELAY_TIMEOUT_MS + 30 s unless RELAY_LEASE_MS says otherwise', () => {
    expect(loadConfig({ RELAY_TIMEOUT_MS: '1000' }).relay.leaseMs).toBe(32_000);
    expect(loadConfig({ RELAY_TIMEOUT_MS: '1000', RELAY_LEASE_MS: '2000' }).relay.leaseMs).toBe(2_000);
  });

  it('keep RELAY_URL exactly as written (a trailing slash may matter to the bot)', () => {
    expect(loadConfig({ RELAY_URL: 'https://bot.example.com/webhook/' }).relay.url).toBe('https://bot.example.com/webhook/');
  });

  it.each([
    [{ RELAY_URL: 'bot.example.com/webhook' }, 'RELAY_URL'],
    [{ RELAY_URL: 'ftp://bot.example.com/' }, 'RELAY_URL'],
    [{ RELAY_TIMEOUT_MS: 'soon' }, 'RELAY_TIMEOUT_MS'],
    [{ RELAY_CONCURRENCY: '0' }, 'RELAY_CONCURRENCY'],
    [{ RELAY_CONCURRENCY_PER_URL: 'many' }, 'RELAY_CONCURRENCY_PER_URL'],
    [{ RELAY_RETRY_BASE_MS: '10000', RELAY_RETRY_MAX_MS: '5000' }, 'RELAY_RETRY_MAX_MS'],
    [{ RELAY_GIVE_UP_AFTER_MS: '-1' }, 'RELAY_GIVE_UP_AFTER_MS'],
    // A lease shorter than an attempt would let a second process send a delivery still in flight.
    [{ RELAY_TIMEOUT_MS: '1000', RELAY_LEASE_MS: '1999' }, 'RELAY_LEASE_MS'],
    [{ RELAY_LEASE_MS: 'forever' }, 'RELAY_LEASE_MS'],
    [{ RELAY_KEEP_GIVEN_UP_MS: '-1' }, 'RELAY_KEEP_GIVEN_UP_MS'],
  ])('refuses %j, naming %s', (env, variable) => {
    expect(configErrorOf(env).variable).toBe(variable);
  });
});
