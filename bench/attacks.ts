/**
 * The attacks of the hardening issue, each run against a live gateway while the load
 * process measures GET /healthz: how long the gateway stops answering while it refuses
 * them. Each attack says how the gateway answered it (the refusal expected).
 */
import { connect } from 'node:net';
import WebSocket from 'ws';
import { generateKey } from '../src/auth/key-format';
import { signBody } from '../src/webhook/signature';
import { serializeLikeMeta, webhookBodyOf } from '../src/webhook/simulated-webhook';

export interface Attack {
  name: string;
  /** what was sent */
  what: string;
  /** runs the attack; resolves with how the gateway answered */
  run: (baseUrl: string) => Promise<string>;
  /** how long /healthz is probed from the attack's start: longer than the attack lasts */
  probeMs: number;
}

const GRAPHQL_TIMEOUT_MS = 120_000;
/** Key guessing: requests, and how many are in flight at once. */
const KEY_GUESSES = 5_000;
const KEY_GUESSERS = 32;
/** A stalled body the gateway held ends at WEBHOOK_RECEIVE_TIMEOUT_MS (10 s); one refused at once, within a second or two. */
const HELD_BODY_MS = 5_000;

async function postGraphql(baseUrl: string, query: string): Promise<string> {
  const response = await fetch(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(GRAPHQL_TIMEOUT_MS),
  });
  const text = await response.text();
  let code = '';
  try {
    code = (JSON.parse(text) as { errors?: { extensions?: { code?: string } }[] }).errors?.[0]?.extensions?.code ?? 'no error';
  } catch {
    code = 'not JSON';
  }
  return `HTTP ${response.status} ${code} (${text.length} bytes)`;
}

/** Opens a graphql-ws socket; resolves once open. */
function openSocket(baseUrl: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Resolves with the close code (or the error) of a socket. */
function closeOf(socket: WebSocket): Promise<string> {
  return new Promise((resolve) => {
    if (socket.readyState === WebSocket.CLOSED) resolve('closed');
    socket.once('close', (code) => resolve(String(code)));
    socket.once('error', (error) => resolve(error.message));
  });
}

function tally(outcomes: string[]): string {
  const counts = new Map<string, number>();
  for (const outcome of outcomes) counts.set(outcome, (counts.get(outcome) ?? 0) + 1);
  return [...counts].map(([outcome, count]) => `${count} × ${outcome}`).join(', ');
}

export function attacks(options: { codeId: string; appSecret: string; pageId: string }): Attack[] {
  const nested = (depth: number): string => (depth === 0 ? 'id' : `scans(first: 100) { edges { node { code { ${nested(depth - 1)} } } } }`);
  const fragments = Array.from({ length: 16 }, (_, level) =>
    level === 0
      ? 'fragment F0 on Query { codes(first: 100) { totalCount } }'
      : `fragment F${level} on Query { ...F${level - 1} ...F${level - 1} }`,
  ).join(' ');
  const aliases = Array.from(
    { length: 1000 },
    (_, n) => `a${n}: codes(first: 100) { edges { node { scans(first: 100) { totalCount } } } }`,
  ).join(' ');

  return [
    {
      name: 'nested lists',
      what: 'code → scans(first: 100) → code, three levels deep, on a code with 100 scans',
      run: (baseUrl) => postGraphql(baseUrl, `{ code(id: "${options.codeId}") { ${nested(3)} } }`),
      probeMs: 3000,
    },
    {
      name: 'token flood',
      what: '{ __typename × 90,000 } (990 KB)',
      run: (baseUrl) => postGraphql(baseUrl, `{ ${'__typename '.repeat(90_000)}}`),
      probeMs: 3000,
    },
    {
      name: 'fragment doubling',
      what: '16 levels of fragments, each spreading the one before twice',
      run: (baseUrl) => postGraphql(baseUrl, `{ ...F15 } ${fragments}`),
      probeMs: 3000,
    },
    {
      name: 'aliases',
      what: '1,000 aliases of codes(first: 100) with nested scans(first: 100)',
      run: (baseUrl) => postGraphql(baseUrl, `{ ${aliases} }`),
      probeMs: 3000,
    },
    {
      name: 'large WebSocket messages',
      what: '40 sockets, each a 4 MB subscribe message after connection_init',
      probeMs: 4000,
      run: async (baseUrl) => {
        const payload = JSON.stringify({
          id: '1',
          type: 'subscribe',
          payload: { query: `subscription { scanned { id } } #${'x'.repeat(4_000_000)}` },
        });
        const outcomes = await Promise.all(
          Array.from({ length: 40 }, async () => {
            const socket = await openSocket(baseUrl);
            const closed = closeOf(socket);
            socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
            socket.send(payload);
            return `close ${await closed}`;
          }),
        );
        return tally(outcomes);
      },
    },
    {
      name: 'large messages before init',
      what: '24 sockets, each an 8 MB message before connection_init',
      probeMs: 4000,
      run: async (baseUrl) => {
        const payload = 'x'.repeat(8_000_000);
        const outcomes = await Promise.all(
          Array.from({ length: 24 }, async () => {
            const socket = await openSocket(baseUrl);
            const closed = closeOf(socket);
            socket.send(payload);
            return `close ${await closed}`;
          }),
        );
        return tally(outcomes);
      },
    },
    {
      name: 'subscriptions on one socket',
      what: '10,000 subscribe messages on one socket',
      probeMs: 3000,
      run: async (baseUrl) => {
        const socket = await openSocket(baseUrl);
        const closed = closeOf(socket);
        const errors: string[] = [];
        let acknowledged = false;
        socket.on('message', (data) => {
          const message = JSON.parse(String(data)) as { type: string; payload?: { message?: string }[] };
          if (message.type === 'connection_ack') acknowledged = true;
          if (message.type === 'error') errors.push(message.payload?.[0]?.message ?? 'error');
        });
        socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
        await new Promise<void>((resolve) => socket.once('message', () => resolve()));
        for (let id = 0; id < 10_000 && socket.readyState === WebSocket.OPEN; id += 1) {
          socket.send(JSON.stringify({ id: String(id), type: 'subscribe', payload: { query: 'subscription { scanned { id } }' } }));
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
        socket.close();
        const code = await closed;
        return `${acknowledged ? 'acknowledged' : 'not acknowledged'}; ${errors.length} subscriptions refused; close ${code}`;
      },
    },
    {
      name: 'unsigned bodies held open',
      what: '200 connections, each declaring a 2.5 MB webhook body, sending 1 MB of it, then stalling',
      // The bodies the gateway takes wait for WEBHOOK_RECEIVE_TIMEOUT_MS (10 s) before it cuts them off.
      probeMs: 12_000,
      run: async (baseUrl) => {
        const { hostname, port } = new URL(baseUrl);
        const chunk = 'x'.repeat(1024 * 1024);
        const outcomes = await Promise.all(
          Array.from(
            { length: 200 },
            () =>
              new Promise<string>((resolve) => {
                const socket = connect(Number(port), hostname);
                const startedAt = Date.now();
                let answer = '';
                socket.on('data', (data: Buffer) => {
                  answer += data.toString('latin1');
                  socket.destroy();
                });
                socket.on('error', () => undefined);
                // A body refused at once may be closed while this side still writes (EPIPE), before its 503 is read:
                // what tells a refused body from a held one is when its connection ends.
                socket.on('close', () => {
                  const held = Date.now() - startedAt >= HELD_BODY_MS;
                  resolve(`${answer.split('\r\n')[0] || 'closed without an answer'}${held ? ' after being held' : ' at once'}`);
                });
                socket.write(
                  `POST /webhook HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${2.5 * 1024 * 1024}\r\n\r\n`,
                );
                socket.write(chunk);
              }),
          ),
        );
        return tally(outcomes);
      },
    },
    {
      name: 'key guessing',
      what: `${KEY_GUESSES.toLocaleString('en-US')} GraphQL requests, ${KEY_GUESSERS} at a time, each with a new well-formed key (right prefix, length and checksum: each one looked up), once a key exists`,
      probeMs: 5_000,
      run: async (baseUrl) => {
        // An open gateway takes every request as ADMIN and looks no key up: the first key locks it
        // (the attacks after this one need no key).
        const locked = await postGraphql(
          baseUrl,
          'mutation { createApiKey(input: { name: "bench lock", role: ADMIN }) { apiKey { id } } }',
        );
        if (!locked.startsWith('HTTP 200')) return `could not create a key: ${locked}`;
        const outcomes: string[] = [];
        let sent = 0;
        const guesser = async () => {
          while (sent < KEY_GUESSES) {
            sent += 1;
            const response = await fetch(`${baseUrl}/graphql`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${generateKey()}` },
              body: '{"query":"{ viewer { role } }"}',
            });
            await response.arrayBuffer();
            outcomes.push(`HTTP ${response.status}`);
          }
        };
        const started = performance.now();
        await Promise.all(Array.from({ length: KEY_GUESSERS }, guesser));
        const perSecond = Math.round(outcomes.length / ((performance.now() - started) / 1000));
        return `${tally(outcomes)} (${perSecond.toLocaleString('en-US')} guesses/s)`;
      },
    },
    {
      name: 'legitimate webhook',
      what: 'one signed webhook of 100 scans, for comparison',
      probeMs: 1000,
      run: async (baseUrl) => {
        const scans = Array.from({ length: 100 }, (_, n) => ({
          pageId: options.pageId,
          ref: 'attack',
          senderPsid: `baseline-${n}`,
          timestamp: Date.now() + n,
        }));
        const body = serializeLikeMeta(webhookBodyOf(scans));
        const response = await fetch(`${baseUrl}/webhook`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(body, options.appSecret) },
          body,
        });
        return `HTTP ${response.status}`;
      },
    },
  ];
}
