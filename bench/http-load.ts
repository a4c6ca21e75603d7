/**
 * Closed-loop HTTP load: `concurrency` senders, each sending its next request as soon as
 * the previous one is answered, over keep-alive connections (one per sender), for a
 * fixed time. Plain `http.request`: no client library between the measurement and the socket.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { cpuMeter, Samples, summarize } from './stats';
import type { HttpRoundResult } from './protocol';

export interface HttpRequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** Describes why an answer is not the expected one, or returns undefined when it is. */
export type AnswerCheck = (answer: HttpAnswer) => string | undefined;

export const expectStatus200: AnswerCheck = (answer) =>
  answer.status === 200 ? undefined : `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`;

export const expectGraphQLData: AnswerCheck = (answer) => {
  if (answer.status !== 200) return `HTTP ${answer.status}: ${answer.body.slice(0, 300)}`;
  // A substring test: parsing every answer would cost the load generator more CPU than the check is worth.
  if (answer.body.includes('"errors"')) return `GraphQL errors: ${answer.body.slice(0, 300)}`;
  return undefined;
};

function send(agent: http.Agent, base: URL, spec: HttpRequestSpec): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method: spec.method,
        path: spec.path,
        headers: { ...spec.headers, 'content-length': String(Buffer.byteLength(spec.body)) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(spec.body);
  });
}

export interface ClosedLoopOptions {
  baseUrl: string;
  concurrency: number;
  durationMs: number;
  next: () => HttpRequestSpec;
  check: AnswerCheck;
}

export async function runClosedLoop(options: ClosedLoopOptions): Promise<HttpRoundResult> {
  const base = new URL(options.baseUrl);
  // A fresh agent per round: no socket left half-closed by the server's keep-alive timeout between rounds.
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency, maxFreeSockets: options.concurrency });
  const latencies = new Samples();
  let failures = 0;
  let firstFailure: string | undefined;
  const cpu = cpuMeter();
  const started = performance.now();
  const deadline = started + options.durationMs;

  const sender = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const spec = options.next();
      const sentAt = performance.now();
      let problem: string | undefined;
      try {
        problem = options.check(await send(agent, base, spec));
      } catch (error) {
        problem = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      if (problem === undefined) {
        latencies.push(performance.now() - sentAt);
      } else {
        failures += 1;
        firstFailure ??= problem;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, sender));
  const elapsedMs = performance.now() - started;
  agent.destroy();
  return {
    requests: latencies.length,
    failures,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    elapsedMs,
    perSecond: (latencies.length / elapsedMs) * 1000,
    latency: summarize(latencies.values()),
    loadCpu: cpu(),
  };
}

/**
 * Requests sent one at a time outside any closed loop (setup, warm-up and paced scans),
 * over one keep-alive connection; an unexpected answer throws.
 */
export class SequentialSender {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly base: URL;

  constructor(baseUrl: string) {
    this.base = new URL(baseUrl);
  }

  async send(spec: HttpRequestSpec, check: AnswerCheck = expectStatus200): Promise<HttpAnswer> {
    const answer = await send(this.agent, this.base, spec);
    const problem = check(answer);
    if (problem !== undefined) throw new Error(`${spec.method} ${spec.path}: ${problem}`);
    return answer;
  }

  close(): void {
    this.agent.destroy();
  }
}
