/** The bare node:http floor of row 1 (http-floor-server.ts), as a child process of the orchestrator. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { track } from './children';
import { processCpuMeter } from './gateway-process';

const START_TIMEOUT_MS = 10_000;

export class HttpFloorServer {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static start(appSecret: string): Promise<HttpFloorServer> {
    const child = track(fork(join(__dirname, 'http-floor-server.js'), [appSecret], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the node:http floor server did not start')), START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`the node:http floor server exited (${code}) before listening`)));
      child.once('message', (message: { type?: string; port?: number }) => {
        clearTimeout(timer);
        if (message.type !== 'listening' || message.port === undefined) reject(new Error(`unexpected message ${JSON.stringify(message)}`));
        else resolve(new HttpFloorServer(child, `http://127.0.0.1:${message.port}`));
      });
    });
  }

  private get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  cpuMeter(): () => number {
    return processCpuMeter(this.child.pid as number, () => this.running);
  }

  assertRunning(): void {
    if (!this.running) throw new Error(`the node:http floor server died (${this.child.exitCode ?? this.child.signalCode})`);
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}
