/**
 * The floor of the delivery row: a bare `ws` server in its own process (as the gateway is)
 * that broadcasts given message strings to every connected client on a fixed schedule,
 * and reports when each broadcast began. Forked by the load process; exits with it.
 */
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import type { FloorServerMessage, FloorServerRequest } from './protocol';

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });

function reply(message: FloorServerMessage): void {
  process.send?.(message);
}

function sleepUntil(instant: number): Promise<void> {
  const wait = instant - performance.now();
  return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
}

async function broadcast(messages: string[], intervalMs: number): Promise<void> {
  const sentAt: number[] = [];
  const start = performance.now();
  for (let index = 0; index < messages.length; index += 1) {
    await sleepUntil(start + index * intervalMs);
    sentAt.push(performance.timeOrigin + performance.now());
    for (const client of server.clients) client.send(messages[index]);
  }
  reply({ type: 'broadcasted', sentAt, clients: server.clients.size });
}

server.on('listening', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected address ${String(address)}`);
  reply({ type: 'listening', port: address.port });
});

process.on('message', (request: FloorServerRequest) => {
  if (request.op === 'broadcast') {
    broadcast(request.messages, request.intervalMs).catch((error: unknown) => {
      process.stderr.write(`floor broadcast failed: ${String(error)}\n`);
      process.exit(1);
    });
  }
});

// The load process is the only reason to live.
process.on('disconnect', () => process.exit(0));
