import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { TEST_PAGE_ID, TEST_VERIFY_TOKEN } from './gateway';
import { TEST_APP_SECRET } from './webhook';

const ROOT = join(__dirname, '..', '..');
/** Compiling src on the fly and loading Apollo and TypeORM takes a few seconds on a busy machine. */
const START_DEADLINE_MS = 60_000;

/** Every gateway process a test file started; each is killed after the file, whatever happened. */
const started = new Set<GatewayProcess>();
afterAll(async () => {
  await Promise.all([...started].map((gateway) => gateway.kill()));
});

/**
 * The real entry point (src/main.ts, compiled on the fly by test/support/run-ts.js, so no
 * build is needed) as its own process, in production mode, with exactly the given
 * environment (PATH aside): what a supervisor runs, and what `kill -9` can take away.
 */
export class GatewayProcess {
  private stderrText = '';
  /** the last lines logged (JSON, on stdout), for a failing test's message */
  private readonly logTail: string[] = [];
  private readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    this.exited = new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    child.stderr?.on('data', (chunk: string) => (this.stderrText += chunk));
    // Read to the end (a full pipe would stop the gateway), keeping only the last lines.
    child.stdout?.on('data', (chunk: string) => {
      this.logTail.push(...chunk.split('\n').filter((line) => line !== ''));
      this.logTail.splice(0, Math.max(0, this.logTail.length - 50));
    });
  }

  /** Starts the gateway on `databaseUrl` and resolves with its URL once it logged "gateway listening". */
  static start(databaseUrl: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
    const child = spawn(process.execPath, ['-r', './test/support/run-ts.js', 'src/main.ts'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'production',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        PAGE_ID: TEST_PAGE_ID,
        APP_SECRET: TEST_APP_SECRET,
        WEBHOOK_VERIFY_TOKEN: TEST_VERIFY_TOKEN,
        // info: the URL is in the "gateway listening" line (one line per request follows, read and dropped).
        LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    let stdout = '';
    let stderr = '';
    const collectStderr = (chunk: string) => (stderr += chunk);
    child.stderr?.on('data', collectStderr);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the gateway did not log "gateway listening" within ${START_DEADLINE_MS} ms:\n${stderr}`));
      }, START_DEADLINE_MS);
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited (${code ?? signal}) before listening:\n${stderr}`));
      };
      child.once('exit', onExit);
      const onStdout = (chunk: string) => {
        stdout += chunk;
        // Complete lines only: the last piece may be a line still being written.
        for (const line of stdout.split('\n').slice(0, -1)) {
          if (!line.startsWith('{')) continue;
          const entry = JSON.parse(line) as { message?: string; url?: string };
          if (entry.message !== 'gateway listening' || typeof entry.url !== 'string') continue;
          clearTimeout(timer);
          child.off('exit', onExit);
          child.stdout?.off('data', onStdout);
          child.stderr?.off('data', collectStderr);
          const gateway = new GatewayProcess(child, entry.url);
          gateway.stderrText = stderr;
          started.add(gateway);
          resolve(gateway);
          return;
        }
        stdout = stdout.slice(stdout.lastIndexOf('\n') + 1);
      };
      child.stdout?.on('data', onStdout);
    });
  }

  /** What the gateway wrote on stderr, and the last lines it logged: for the message of a failing test. */
  get output(): string {
    return `stderr:\n${this.stderrText}\nlast log lines:\n${this.logTail.join('\n')}`;
  }

  /** `kill -9`: no drain, no rollback, no closing of the database. Resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
    started.delete(this);
  }
}
