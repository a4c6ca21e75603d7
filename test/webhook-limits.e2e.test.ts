/**
 * A signature can only be checked on a whole body, so what waits for one is bounded:
 * the bytes of all bodies held at once, and the time to receive one.
 */
import { connect, type Socket } from 'node:net';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { postScans, scanOf } from './support/webhook';

interface RawPost {
  socket: Socket;
  /** the first bytes the gateway answered (the status line is in them) */
  answered: Promise<string>;
  /** everything answered, once the connection is closed */
  closed: Promise<string>;
}

/** A raw connection that sends the head of a webhook POST and `bodyBytes` of its body, then stalls. */
async function stalledPost(gateway: TestGateway, declaredLength: number | 'chunked', bodyBytes: number): Promise<RawPost> {
  const { hostname, port } = new URL(gateway.url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  let received = '';
  const answered = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1'))));
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  const closed = new Promise<string>((resolve) => socket.once('close', () => resolve(received)));
  const length = declaredLength === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${declaredLength}`;
  socket.write(`POST /webhook HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\n${length}\r\n\r\n`);
  if (bodyBytes > 0) {
    const bytes = 'x'.repeat(bodyBytes);
    socket.write(declaredLength === 'chunked' ? `${bodyBytes.toString(16)}\r\n${bytes}\r\n` : bytes);
  }
  return { socket, answered, closed };
}

/** The status line of a raw answer, e.g. "HTTP/1.1 503 Service Unavailable". */
const statusOf = (raw: string) => raw.split('\r\n')[0];

/** Waits for the gateway's answer, then closes our side. */
async function answerOf(post: RawPost): Promise<string> {
  const raw = await post.answered;
  post.socket.destroy();
  return raw;
}

describe('bytes of webhook bodies in flight', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', {
      WEBHOOK_MAX_BYTES: String(48 * 1024),
      WEBHOOK_MAX_INFLIGHT_BYTES: String(64 * 1024),
      LOG_LEVEL: 'warn',
    });
  });

  it('refuses a body that would not fit beside those already held with 503 and Retry-After, and takes bodies again once they are gone', async () => {
    const first = await stalledPost(gateway, 40 * 1024, 1024);
    // The first is held (its declared length is taken from the budget before its bytes come).
    const second = await stalledPost(gateway, 40 * 1024, 0);
    const refused = await answerOf(second);
    expect(statusOf(refused)).toBe('HTTP/1.1 503 Service Unavailable');
    expect(refused).toMatch(/\r\nretry-after: 1\r\n/i);

    // A small signed webhook still fits beside the held 40 KiB.
    expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID)])).status).toBe(200);
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);

    // The stalled sender goes away: its bytes are released (once the gateway has seen the close,
    // which may come a moment after ours; until then the answer is still 503).
    first.socket.destroy();
    await first.closed;
    const unsigned = () =>
      fetch(`${gateway.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(40 * 1024) });
    let verdict = await unsigned();
    for (let attempt = 0; verdict.status === 503 && attempt < 100; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      verdict = await unsigned();
    }
    // Taken and read whole: the signature's verdict.
    expect(verdict.status).toBe(401);
    expect(gateway.logs.entries()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          level: 'warn',
          message: 'webhook body refused',
          reason: 'Too many webhook bytes in flight; retry later.',
        }),
      ]),
    );
  });

  it('counts the bytes of a chunked body as they come, refusing it once they do not fit', async () => {
    const held = await stalledPost(gateway, 40 * 1024, 1024);
    const chunked = await stalledPost(gateway, 'chunked', 30 * 1024);
    const refused = await answerOf(chunked);
    expect(statusOf(refused)).toBe('HTTP/1.1 503 Service Unavailable');
    held.socket.destroy();
    await held.closed;
  });

  it('refuses a declared length over WEBHOOK_MAX_BYTES with 413 before reading it', async () => {
    const large = await stalledPost(gateway, 48 * 1024 + 1, 0);
    expect(statusOf(await answerOf(large))).toBe('HTTP/1.1 413 Payload Too Large');
  });
});

describe('time to receive a webhook body', () => {
  let gateway: TestGateway;
  beforeAll(async () => {
    gateway = await startTestGateway('sqlite', {
      WEBHOOK_RECEIVE_TIMEOUT_MS: '300',
      WEBHOOK_MAX_INFLIGHT_BYTES: String(64 * 1024),
      LOG_LEVEL: 'warn',
    });
  });

  it('answers 408 and closes the connection of a sender that stalls, releasing what it held', async () => {
    const stalled = await stalledPost(gateway, 60 * 1024, 100);
    // The gateway closes the connection itself: waiting for the close is waiting for an event.
    const raw = await stalled.closed;
    expect(raw === '' || statusOf(raw) === 'HTTP/1.1 408 Request Timeout').toBe(true);
    // Its 60 KiB are free again: another body of that size is taken.
    const next = await stalledPost(gateway, 60 * 1024, 0);
    next.socket.write('x'.repeat(60 * 1024));
    expect(statusOf(await answerOf(next))).toBe('HTTP/1.1 401 Unauthorized');
    expect((await postScans(gateway.url, [scanOf(TEST_PAGE_ID)])).status).toBe(200);
  });
});
