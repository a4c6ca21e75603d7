import { createLogger, redactUrl, REDACTED_PATHS } from '../../src/logging/logger';

function capture(level: 'debug' | 'info' | 'warn' | 'error' | 'silent' = 'debug') {
  const lines: string[] = [];
  const logger = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  return { logger, lines, records: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('redactUrl', () => {
  it('hides the webhook handshake token and keeps the other parameters', () => {
    const url = '/webhook?hub.mode=subscribe&hub.verify_token=s3cr3t-token&hub.challenge=1158201444';
    const redacted = redactUrl(url);
    expect(redacted).not.toContain('s3cr3t-token');
    const query = new URLSearchParams(redacted.split('?')[1]);
    expect(redacted.startsWith('/webhook?')).toBe(true);
    expect(query.get('hub.verify_token')).toBe('[redacted]');
    expect(query.get('hub.mode')).toBe('subscribe');
    expect(query.get('hub.challenge')).toBe('1158201444');
  });

  it.each(['access_token', 'api_key', 'apiKey', 'client_secret', 'signature', 'password', 'TOKEN', 'X-Api-Key'])('hides %s', (name) => {
    const redacted = redactUrl(`/graph?${name}=hunter2&page=1`);
    expect(redacted).not.toContain('hunter2');
    expect(new URLSearchParams(redacted.split('?')[1]).get('page')).toBe('1');
  });

  it('hides every occurrence of a repeated secret parameter', () => {
    const redacted = redactUrl('/x?access_token=one&access_token=two');
    expect(redacted).not.toMatch(/one|two/);
  });

  it('leaves a URL without secrets exactly as it was (no re-encoding)', () => {
    for (const url of [
      '/graphql',
      '/graphql?',
      '/images/abc.png?size=1000&v=2',
      '/x?q=a%20b&ref=t+7',
      '/x?hub.mode=subscribe&hub.challenge=1',
    ]) {
      expect(redactUrl(url)).toBe(url);
    }
  });

  it('errs on the safe side: a name merely containing "key" is hidden too', () => {
    expect(new URLSearchParams(redactUrl('/x?monkey=1').split('?')[1]).get('monkey')).toBe('[redacted]');
  });

  it('keeps the path and does not take a secret-looking value for a secret name', () => {
    expect(redactUrl('/token/secret?page=token')).toBe('/token/secret?page=token');
  });
});

describe('createLogger', () => {
  it('writes one JSON line with message, level as a word and an ISO time', () => {
    const { logger, records } = capture('info');
    logger.info({ codes: 2 }, 'codes generated');
    const [record] = records();
    expect(record).toMatchObject({ level: 'info', message: 'codes generated', codes: 2 });
    expect(record.msg).toBeUndefined();
    expect(new Date(record.time as string).toISOString()).toBe(record.time);
    expect(Object.keys(record).sort()).toEqual(['codes', 'level', 'message', 'time']);
  });

  it.each([
    ['warn', 'warn'],
    ['error', 'error'],
    ['debug', 'debug'],
  ] as const)('level %s is written as "%s"', (method, word) => {
    const { logger, records } = capture('debug');
    logger[method]('x');
    expect(records()[0].level).toBe(word);
  });

  it('writes nothing below its level, nothing at all when silent', () => {
    const error = capture('error');
    error.logger.info('not written');
    error.logger.warn('not written');
    error.logger.error('written');
    expect(error.records().map((record) => record.message)).toEqual(['written']);
    const silent = capture('silent');
    silent.logger.error('not written');
    expect(silent.lines).toEqual([]);
  });

  it('redacts credentials and PSIDs at the top level', () => {
    const { logger, lines, records } = capture();
    logger.info(
      { authorization: 'Bearer key-123', accessToken: 'EAAG-token', psid: 'psid-1', senderPsid: 'psid-2', pageId: '1234567890' },
      'x',
    );
    expect(records()[0]).toMatchObject({
      authorization: '[redacted]',
      accessToken: '[redacted]',
      psid: '[redacted]',
      senderPsid: '[redacted]',
      pageId: '1234567890',
    });
    expect(lines[0]).not.toMatch(/key-123|EAAG-token|psid-1|psid-2/);
  });

  it('redacts them one level deep', () => {
    const { logger, lines, records } = capture();
    logger.warn(
      {
        headers: { authorization: 'Bearer key-123', accept: 'json' },
        scan: { senderPsid: 'psid-2', ref: 'table-7' },
        page: { accessToken: 'EAAG-token' },
        person: { psid: 'psid-1' },
      },
      'x',
    );
    expect(records()[0]).toMatchObject({
      headers: { authorization: '[redacted]', accept: 'json' },
      scan: { senderPsid: '[redacted]', ref: 'table-7' },
      page: { accessToken: '[redacted]' },
      person: { psid: '[redacted]' },
    });
    expect(lines[0]).not.toMatch(/key-123|EAAG-token|psid-1|psid-2/);
  });

  it('covers the other secrets it lists', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        apiKey: 'leak-k1',
        token: 'leak-t1',
        secret: 'leak-s1',
        pageAccessToken: 'leak-p1',
        nested: { apiKey: 'leak-k2', token: 'leak-t2', secret: 'leak-s2', pageAccessToken: 'leak-p2' },
      },
      'x',
    );
    expect(lines[0]).not.toContain('leak-');
    expect(JSON.parse(lines[0])).toMatchObject({ apiKey: '[redacted]', nested: { pageAccessToken: '[redacted]' } });
    expect(REDACTED_PATHS).toEqual(
      expect.arrayContaining(['authorization', 'accessToken', 'psid', 'senderPsid', '*.authorization', '*.psid']),
    );
  });

  it('does not change the object it was given', () => {
    const { logger } = capture();
    const fields = { authorization: 'Bearer key-123', nested: { psid: 'psid-1' } };
    logger.info(fields, 'x');
    expect(fields).toEqual({ authorization: 'Bearer key-123', nested: { psid: 'psid-1' } });
  });

  it('logs a request as method, redacted URL and address, without headers', () => {
    const { logger, lines, records } = capture();
    logger.info(
      {
        req: {
          method: 'GET',
          url: '/webhook?hub.verify_token=s3cr3t&hub.challenge=42',
          ip: '10.0.0.1',
          headers: { authorization: 'Bearer key-123', cookie: 'c=1' },
        },
      },
      'incoming request',
    );
    const record = records()[0] as { req: Record<string, unknown> };
    expect(record.req).toEqual({ method: 'GET', url: expect.stringContaining('hub.challenge=42'), remoteAddress: '10.0.0.1' });
    expect(lines[0]).not.toMatch(/s3cr3t|key-123|c=1/);
  });

  it('serializes an error with its type, message and stack', () => {
    const { logger, records } = capture();
    logger.error({ err: new RangeError('out of range') }, 'failed');
    expect(records()[0]).toMatchObject({
      message: 'failed',
      err: { type: 'RangeError', message: 'out of range', stack: expect.stringContaining('RangeError') },
    });
  });
});
