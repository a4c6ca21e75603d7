import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server (Redis or PostgreSQL in the tests), to
 * take that server away and bring it back without touching it: `cutAll()` drops every
 * current connection and refuses new ones until `restore()`; `freeze()` keeps every
 * connection open but carries nothing either way (a network partition, a server that stopped
 * answering), new connections included, until `thaw()`.
 */
export interface TcpProxy {
  port: number;
  /** Connections refused since the proxy started (while cut). */
  readonly refused: number;
  cutAll(): void;
  restore(): void;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  /** each direction of each connection: what freeze() stops and thaw() starts again */
  const flows = new Set<{ from: Socket; to: Socket }>();
  /** connections accepted while frozen, connected upstream at thaw() */
  const waiting = new Set<Socket>();
  let cut = false;
  let frozen = false;
  let refused = 0;

  const forward = (client: Socket) => {
    const upstream = connect(target.port, target.host);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      const flow = { from, to };
      sockets.add(from);
      flows.add(flow);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        flows.delete(flow);
        to.destroy();
      });
      from.pipe(to);
    }
  };
  const server = createServer((client) => {
    if (cut) {
      refused += 1;
      client.destroy();
      return;
    }
    if (!frozen) return forward(client);
    sockets.add(client);
    waiting.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => {
      sockets.delete(client);
      waiting.delete(client);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });

  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
  };
  return {
    port: (server.address() as AddressInfo).port,
    get refused() {
      return refused;
    },
    cutAll: () => {
      cut = true;
      destroyAll();
    },
    restore: () => {
      cut = false;
    },
    freeze: () => {
      frozen = true;
      for (const { from, to } of flows) {
        from.unpipe(to);
        from.pause();
      }
    },
    thaw: () => {
      frozen = false;
      for (const { from, to } of flows) from.pipe(to);
      for (const client of waiting) forward(client);
      waiting.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut = true;
        destroyAll();
        server.close(() => resolve());
      }),
  };
}

/** host and port of a redis:// URL. */
export function hostAndPort(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 6379) };
}
