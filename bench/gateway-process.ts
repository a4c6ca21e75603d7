/**
 * The gateway under test, as production runs it: `node dist/src/main.js` with
 * NODE_ENV=production and a SQLite file, or (rows 18 to 20) a PostgreSQL database and Redis.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { track } from './children';

const MAIN = join(__dirname, '..', 'src', 'main.js');
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

/** Variables of the public contract that the parent's environment must not leak into the gateway. */
const CONTRACT_VARIABLES = [
  'PORT',
  'HOST',
  'PUBLIC_URL',
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_PREFIX',
  'CODE_PROVIDER',
  'GRAPH_API_URL',
  'GRAPH_API_VERSION',
  'PAGE_ID',
  'PAGE_ACCESS_TOKEN',
  'ENCRYPTION_KEY',
  'ENCRYPTION_KEY_PREVIOUS',
  'APP_SECRET',
  'PSID_HASH_KEY',
  'WEBHOOK_VERIFY_TOKEN',
  'CODE_IMAGE_HOSTS',
  'ADMIN_API_KEY',
  'GRAPHQL_INTROSPECTION',
  'WEBHOOK_MAX_BYTES',
  'SUBSCRIBER_MAX_BACKLOG',
  'LOG_LEVEL',
  'METRICS_TOKEN',
  'CORS_ORIGINS',
  'GENERATE_RATE_LIMIT',
];

export interface GatewayOptions {
  /** the SQLite file (DATABASE_URL=sqlite:<path>), unless databaseUrl is given */
  databasePath?: string;
  /** a postgres:// URL, used instead of databasePath */
  databaseUrl?: string;
  /** REDIS_PREFIX: the instances of one run's row share it, and no one else on that Redis */
  redisPrefix?: string;
  /** REDIS_URL: instances sharing it deliver each other's scans */
  redisUrl?: string;
  appSecret: string;
  pageId: string;
  subscriberMaxBacklog: number;
  /** when set, the gateway writes a V8 CPU profile (.cpuprofile) there when it stops */
  profileDirectory?: string;
}

function databaseUrlOf(options: GatewayOptions): string {
  if (options.databaseUrl !== undefined) return options.databaseUrl;
  if (options.databasePath === undefined) throw new Error('a gateway needs databasePath or databaseUrl');
  return `sqlite:${options.databasePath}`;
}

let clockTicks: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (user + system) a process has used so far, in seconds, from /proc. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
}

/** Measures a process's CPU from now on, in cores (1 = one core busy all along); NaN once it is gone. */
export function processCpuMeter(pid: number, running: () => boolean): () => number {
  const cpuBefore = processCpuSeconds(pid);
  const started = performance.now();
  return () => (running() ? (processCpuSeconds(pid) - cpuBefore) / ((performance.now() - started) / 1000) : Number.NaN);
}

export class GatewayProcess {
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** the last lines the gateway wrote on stderr, for error messages */
    private readonly stderrTail: string[],
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
  }

  static start(options: GatewayOptions): Promise<GatewayProcess> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const name of CONTRACT_VARIABLES) delete env[name];
    Object.assign(env, {
      NODE_ENV: 'production',
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrlOf(options),
      APP_SECRET: options.appSecret,
      PAGE_ID: options.pageId,
      CODE_PROVIDER: 'local',
      SUBSCRIBER_MAX_BACKLOG: String(options.subscriberMaxBacklog),
      // Row 5 measures generating, not the limit on it.
      GENERATE_RATE_LIMIT: '1000000',
      ...(options.redisUrl === undefined ? {} : { REDIS_URL: options.redisUrl }),
      ...(options.redisPrefix === undefined ? {} : { REDIS_PREFIX: options.redisPrefix }),
    });
    const nodeOptions = options.profileDirectory ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDirectory}`] : [];
    const child = track(spawn(process.execPath, [...nodeOptions, MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    const stderrTail: string[] = [];
    let stderrForwarded = 0;
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter((text) => text.trim() !== '')) {
        stderrTail.push(line);
        if (stderrTail.length > 30) stderrTail.shift();
        // Warnings are worth seeing (a dropped slow subscriber, say), but not ten thousand of them.
        if (stderrForwarded < 10) process.stderr.write(`  [gateway stderr] ${line}\n`);
        else if (stderrForwarded === 10) process.stderr.write('  [gateway stderr] … (more lines not shown)\n');
        stderrForwarded += 1;
      }
    });

    return new Promise((resolve, reject) => {
      let pending = '';
      let url: string | undefined;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the gateway did not log "gateway listening" within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited (${code ?? signal}) before listening:\n${stderrTail.join('\n')}`));
      };
      child.once('exit', onExit);
      // stdout carries one JSON line per request in production; it must keep being read
      // (a full pipe would block the gateway), but after the first line only to be dropped.
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        if (url !== undefined) return;
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          let parsed: { message?: unknown; url?: unknown };
          try {
            parsed = JSON.parse(line) as typeof parsed;
          } catch {
            continue;
          }
          if (parsed.message === 'gateway listening' && typeof parsed.url === 'string') {
            url = parsed.url;
            pending = '';
            clearTimeout(timer);
            child.off('exit', onExit);
            resolve(new GatewayProcess(child, url, stderrTail));
            return;
          }
        }
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error('the gateway has no pid');
    return this.child.pid;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resident set size in KiB, from /proc/<pid>/status. */
  rssKiB(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!match) throw new Error(`no VmRSS in /proc/${this.pid}/status`);
    return Number(match[1]);
  }

  /** Measures the gateway's CPU from now on, in cores (1 = one core busy all along). */
  cpuMeter(): () => number {
    return processCpuMeter(this.pid, () => this.running);
  }

  /** Throws, with the last lines of stderr, if the gateway died. */
  assertRunning(): void {
    if (!this.running) {
      throw new Error(`the gateway died (${this.child.exitCode ?? this.child.signalCode}):\n${this.stderrTail.join('\n')}`);
    }
  }

  /** SIGTERM (graceful: drains, closes the database), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await this.exited;
    clearTimeout(timer);
  }
}
