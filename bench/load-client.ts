/** The orchestrator's handle on the load generator process (load.ts), typed by protocol.ts. */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { track } from './children';
import type { LoadOp, LoadOps, LoadRequest, LoadResponse } from './protocol';

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

export class LoadProcess {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (response: LoadResponse) => {
      const waiting = this.pending.get(response.id);
      if (!waiting) return;
      this.pending.delete(response.id);
      if (response.ok) waiting.resolve(response.result);
      else waiting.reject(new Error(`load generator: ${response.error}`));
    });
    child.once('exit', (code, signal) => {
      for (const waiting of this.pending.values()) waiting.reject(new Error(`the load generator exited (${code ?? signal})`));
      this.pending.clear();
    });
  }

  static start(): LoadProcess {
    // Its own heap limit: 10,000 WebSocket clients and their receipts fit comfortably.
    const child = fork(join(__dirname, 'load.js'), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: ['--max-old-space-size=4096'],
    });
    return new LoadProcess(track(child));
  }

  call<K extends LoadOp>(op: K, params: LoadOps[K]['params']): Promise<LoadOps[K]['result']> {
    const id = this.nextId;
    this.nextId += 1;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject });
      this.child.send({ id, op, params } as LoadRequest, (error) => {
        if (error) {
          this.pending.delete(id);
          reject(error);
        }
      });
    });
  }

  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}
