import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { SEND_HIGH_WATER_BYTES, WebSocketSender } from '../src/app/websocket-sender';

/** A real server and client on port 0; the server side sends through WebSocketSender. */
async function connected(): Promise<{
  sender: WebSocketSender;
  server: WebSocket;
  client: WebSocket;
  clientSocket: Duplex;
  close(): Promise<void>;
}> {
  const http: Server = createServer();
  const webSockets = new WebSocketServer({ noServer: true });
  const accepted = new Promise<{ socket: WebSocket; connection: Duplex }>((resolve) => {
    http.on('upgrade', (request: IncomingMessage, connection: Duplex, head: Buffer) =>
      webSockets.handleUpgrade(request, connection, head, (socket) => resolve({ socket, connection })),
    );
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
  const clientSocket = new Promise<Duplex>((resolve) => client.once('upgrade', (response) => resolve(response.socket)));
  await new Promise((resolve, reject) => {
    client.once('open', resolve);
    client.once('error', reject);
  });
  const { socket, connection } = await accepted;
  return {
    sender: new WebSocketSender(socket, connection),
    server: socket,
    client,
    clientSocket: await clientSocket,
    close: async () => {
      client.terminate();
      socket.terminate();
      webSockets.close();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

/** The promise's value, or 'pending' when it has not settled after the current turn. */
async function settled<T>(promise: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([promise, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

function receive(client: WebSocket, count: number): Promise<string[]> {
  const messages: string[] = [];
  return new Promise((resolve) => {
    client.on('message', (data: Buffer) => {
      messages.push(data.toString());
      if (messages.length === count) resolve(messages);
    });
  });
}

describe('WebSocketSender', () => {
  it('delivers every message, in order, when many are sent in one turn', async () => {
    const { sender, client, close } = await connected();
    try {
      const received = receive(client, 1000);
      const sent = Array.from({ length: 1000 }, (_, index) => `message ${index}`);
      await Promise.all(sent.map((message) => sender.send(message)));
      expect(await received).toEqual(sent);
    } finally {
      await close();
    }
  });

  it('resolves sends at once while little is unsent, and makes them wait for a client that does not read', async () => {
    const { sender, server, client, clientSocket, close } = await connected();
    try {
      clientSocket.pause();
      const chunk = 'x'.repeat(16 * 1024);
      let pending: Promise<void> | undefined;
      let sent = 0;
      // Until the kernel's buffers are full and ws holds more than the high-water mark.
      while (sent < 4096) {
        const sending = sender.send(`${sent} ${chunk}`);
        sent += 1;
        if ((await settled(sending)) === 'pending') {
          pending = sending;
          break;
        }
      }
      expect(pending).toBeDefined();
      expect(server.bufferedAmount).toBeGreaterThanOrEqual(SEND_HIGH_WATER_BYTES);

      const received = receive(client, sent);
      clientSocket.resume();
      await pending;
      const messages = await received;
      expect(messages.map((message) => Number(message.split(' ')[0]))).toEqual(Array.from({ length: sent }, (_, index) => index));
    } finally {
      await close();
    }
  });

  it('resolves at once, sending nothing, once the socket is closed', async () => {
    const { sender, client, close } = await connected();
    try {
      const closed = new Promise((resolve) => client.once('close', resolve));
      client.close();
      await closed;
      await expect(sender.send('too late')).resolves.toBeUndefined();
    } finally {
      await close();
    }
  });
});
