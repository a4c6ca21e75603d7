import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent, get as httpGet } from 'node:http';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { print } from 'graphql';
import WebSocket from 'ws';
import { CodesDocument, GenerateCodeDocument } from './generated/graphql';
import { DATABASE_KINDS, reportSkippedDatabases } from './support/databases';
import { FakeGraphApi, renderPng } from './support/fake-graph-api';
import { startTestGateway, TEST_PAGE_ID, type TestGateway } from './support/gateway';
import { executeOk } from './support/graphql-client';

const ROOT = join(__dirname, '..');
const TOKEN = 'test-token-lifecycle-0123456789';
/** What a supervisor grants before SIGKILL; the gateway promises to be gone well within it. */
const STOP_DEADLINE_MS = 10_000;
/** Compiling src on the fly and loading Apollo and TypeORM takes a few seconds on a busy machine. */
const START_DEADLINE_MS = 20_000;

reportSkippedDatabases();

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface MainProcess {
  child: ChildProcessWithoutNullStreams;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
}

/** Rejects after `ms` unless `promise` settled first: a deadline for an event, not a measurement. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** `node -r ./test/support/run-ts.js src/main.ts` with exactly the given environment (plus PATH). */
function runMain(env: Record<string, string>): MainProcess {
  const child = spawn(process.execPath, ['-r', './test/support/run-ts.js', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Resolves with the URL of the `gateway listening` log line; rejects if the process exits first. */
function listeningUrl(main: MainProcess): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const check = () => {
        // Complete lines only: the last piece may be a line still being written.
        for (const line of main.stdout().split('\n').slice(0, -1)) {
          if (!line.startsWith('{')) continue;
          const entry = JSON.parse(line) as { message?: string; url?: string };
          if (entry.message === 'gateway listening' && typeof entry.url === 'string') {
            main.child.stdout.off('data', check);
            resolve(entry.url);
            return;
          }
        }
      };
      main.child.stdout.on('data', check);
      main.exited.then((exit) => reject(new Error(`main exited (${JSON.stringify(exit)}) before listening: ${main.stderr()}`)));
      check();
    }),
    START_DEADLINE_MS,
    'gateway listening',
  );
}

/** Polls a condition until it holds or the deadline passes. */
async function until(condition: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * The environment of the child (PATH aside, nothing is inherited): production, as deployed, where
 * a stray signal handler (Apollo's own, for one) would kill the process mid-stop.
 */
function childEnv(directory: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: `sqlite:${join(directory, 'gateway.sqlite')}`,
    PAGE_ID: TEST_PAGE_ID,
    ...extra,
  };
}

describe('src/main.ts as a process', () => {
  let directory: string;
  const running = new Set<MainProcess>();

  function start(env: Record<string, string>): MainProcess {
    const main = runMain(env);
    running.add(main);
    void main.exited.then(() => running.delete(main));
    return main;
  }

  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'gateway-lifecycle-'));
  });
  afterAll(async () => {
    // A failed test may leave a child behind; it must not outlive the suite.
    for (const main of running) main.child.kill('SIGKILL');
    await Promise.all([...running].map((main) => main.exited));
    rmSync(directory, { recursive: true, force: true });
  });

  it.each([
    { name: 'PORT not a number', env: { PORT: 'abc' }, variable: 'PORT' },
    { name: 'an unknown CODE_PROVIDER', env: { CODE_PROVIDER: 'magic' }, variable: 'CODE_PROVIDER' },
    { name: 'facebook without a token', env: { CODE_PROVIDER: 'facebook' }, variable: 'PAGE_ACCESS_TOKEN' },
  ] as { name: string; env: Record<string, string>; variable: string }[])(
    'stops at start on $name: exit code 1 and one line naming $variable',
    async ({ env, variable }) => {
      const main = start(childEnv(directory, env));
      const exit = await within(main.exited, START_DEADLINE_MS, 'exit');
      expect(exit).toEqual({ code: 1, signal: null });
      const lines = main
        .stderr()
        .split('\n')
        .filter((line) => line !== '');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(variable);
      expect(main.stderr()).toBe(`${lines[0]}\n`);
      expect(main.stdout()).toBe('');
    },
  );

  it('stops at start on a port already in use: exit code 1, one line saying so, no stack trace', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const main = start(childEnv(directory, { PORT: String(port) }));
      expect(await within(main.exited, START_DEADLINE_MS, 'exit')).toEqual({ code: 1, signal: null });
      expect(main.stderr()).toBe(`Port ${port} on 127.0.0.1 is already in use: stop what uses it or set PORT.\n`);
      expect(main.stdout()).toBe('');
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it.each([
    ['refuses connections', 'refusing'],
    ['accepts connections but never answers', 'silent'],
  ] as const)('exits 0 on SIGTERM within the deadline while Redis %s', async (_name, behaviour) => {
    // A port where nothing listens, or a peer that accepts and then says nothing.
    const peerSockets = new Set<Socket>();
    const peer = createServer((socket) => {
      peerSockets.add(socket.on('error', () => undefined));
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const { port } = peer.address() as AddressInfo;
    if (behaviour === 'refusing') await new Promise<void>((resolve) => peer.close(() => resolve()));
    try {
      const main = start(childEnv(directory, { REDIS_URL: `redis://127.0.0.1:${port}` }));
      const url = await listeningUrl(main);
      expect((await fetch(`${url}/readyz`)).status).toBe(503);
      main.child.kill('SIGTERM');
      expect(await within(main.exited, STOP_DEADLINE_MS, 'exit after SIGTERM')).toEqual({ code: 0, signal: null });
      const messages = main
        .stdout()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { message: string }).message);
      expect(messages).not.toContain('graceful stop exceeded its deadline; exiting');
      expect(messages.slice(-2)).toEqual(['stopping', 'stopped']);
    } finally {
      if (behaviour === 'silent') {
        for (const socket of peerSockets) socket.destroy();
        await new Promise<void>((resolve) => peer.close(() => resolve()));
      }
    }
  });

  it('npm start without a build says how to build, in one line, instead of a stack trace', async () => {
    // The launcher alone, in a checkout that has not been built.
    const checkout = mkdtempSync(join(tmpdir(), 'gateway-unbuilt-'));
    try {
      mkdirSync(join(checkout, 'scripts'));
      copyFileSync(join(ROOT, 'scripts', 'run-built.cjs'), join(checkout, 'scripts', 'run-built.cjs'));
      const launcher = spawn(process.execPath, ['scripts/run-built.cjs', 'src/main.js'], {
        cwd: checkout,
        env: { PATH: process.env.PATH ?? '' },
      });
      let stderr = '';
      launcher.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const exit = await within(
        new Promise<number | null>((resolve) => launcher.once('exit', (code) => resolve(code))),
        START_DEADLINE_MS,
        'exit',
      );
      expect(exit).toBe(1);
      expect(stderr).toBe('dist/src/main.js is missing: build first with `npm run build` (npm install builds too).\n');
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
  });

  it('serves, stops gracefully on SIGTERM (finishing a request in flight, closing sockets) and keeps its data', async () => {
    const fake = await FakeGraphApi.start();
    try {
      const first = start(
        childEnv(directory, {
          CODE_PROVIDER: 'facebook',
          GRAPH_API_URL: fake.url,
          PAGE_ACCESS_TOKEN: TOKEN,
          GRAPH_API_TIMEOUT_MS: '5000',
        }),
      );
      const url = await listeningUrl(first);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      expect((await fetch(`${url}/readyz`)).status).toBe(200);

      // An idle keep-alive connection.
      const agent = new Agent({ keepAlive: true });
      const keptSocket = await new Promise<Socket>((resolve, reject) => {
        const request = httpGet(`${url}/healthz`, { agent }, (response) => {
          response.resume();
          response.once('end', () => resolve(request.socket as Socket));
        });
        request.once('error', reject);
      });
      const keptSocketClosed = new Promise<void>((resolve) => keptSocket.once('close', () => resolve()));

      // An open graphql-ws connection.
      const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
      const webSocketClosed = new Promise<{ code: number }>((resolve) => socket.once('close', (code) => resolve({ code })));
      await within(new Promise<void>((resolve) => socket.once('open', () => resolve())), 5000, 'WebSocket open');
      const acknowledged = new Promise<{ type: string }>((resolve) =>
        socket.once('message', (data) => resolve(JSON.parse(String(data)) as { type: string })),
      );
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      expect(await within(acknowledged, 5000, 'connection_ack')).toEqual({ type: 'connection_ack' });

      // A request in flight: the Graph API answers after a while, and the signal comes meanwhile.
      fake.enqueue({ kind: 'slow', delayMs: 800 });
      const inFlight = fetch(`${url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: print(GenerateCodeDocument), variables: { input: { data: { ref: 'survivor' }, imageSize: 200 } } }),
      });
      await until(() => fake.requests.length === 1, 'the Graph API call');
      first.child.kill('SIGTERM');

      const response = await inFlight;
      expect(response.status).toBe(200);
      const body = (await response.json()) as { data?: { generateCode: { id: string; provider: string } }; errors?: unknown };
      expect(body.errors).toBeUndefined();
      expect(body.data?.generateCode.provider).toBe('FACEBOOK');
      const created = body.data?.generateCode.id;

      expect(await within(first.exited, STOP_DEADLINE_MS, 'exit after SIGTERM')).toEqual({ code: 0, signal: null });
      expect((await within(webSocketClosed, 1000, 'WebSocket close')).code).toBe(1001);
      await within(keptSocketClosed, 1000, 'keep-alive connection close');
      agent.destroy();
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();

      // The same file, a new process: the code and its image are there.
      const second = start(childEnv(directory));
      const secondUrl = await listeningUrl(second);
      const { codes } = await executeOk(secondUrl, CodesDocument, { ref: 'survivor' });
      expect(codes.totalCount).toBe(1);
      expect(codes.edges[0].node).toMatchObject({ id: created, provider: 'FACEBOOK', imageSize: 200 });
      const image = await fetch(`${secondUrl}${new URL(codes.edges[0].node.imageUrl).pathname}`);
      expect(image.status).toBe(200);
      expect(Buffer.from(await image.arrayBuffer()).equals(renderPng(200))).toBe(true);

      second.child.kill('SIGINT');
      expect(await within(second.exited, STOP_DEADLINE_MS, 'exit after SIGINT')).toEqual({ code: 0, signal: null });
      const log = second
        .stdout()
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as { message: string; signal?: string });
      expect(log.map((entry) => entry.message)).toEqual(['gateway listening', 'stopping', 'stopped']);
      expect(log[1].signal).toBe('SIGINT');
      expect(second.stderr()).toBe('');
    } finally {
      await fake.stop();
    }
  });
});

describe.each(DATABASE_KINDS)('readiness on %s', (kind) => {
  let gateway: TestGateway;

  beforeAll(async () => {
    gateway = await startTestGateway(kind);
  });

  it('is ready while the database answers and unready (503) once it is gone, while still alive', async () => {
    const ready = await fetch(`${gateway.url}/readyz`);
    expect(ready.status).toBe(200);
    await executeOk(gateway.url, GenerateCodeDocument, { input: { data: { ref: 'before-outage' }, imageSize: 100 } });

    await gateway.db.dataSource.destroy();

    const unready = await fetch(`${gateway.url}/readyz`);
    expect(unready.status).toBe(503);
    const healthy = await fetch(`${gateway.url}/healthz`);
    expect(healthy.status).toBe(200);
    // Still serving, still unready: the check asks the database every time.
    expect((await fetch(`${gateway.url}/readyz`)).status).toBe(503);
  });
});
