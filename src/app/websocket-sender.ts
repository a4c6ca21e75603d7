import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

/**
 * Bytes a socket may hold unsent before a sender waits for them to leave: enough for a
 * subscriber's replay to go out in a few writes, small enough that a slow client is felt.
 */
export const SEND_HIGH_WATER_BYTES = 64 * 1024;

/**
 * How graphql-ws sends on one socket. graphql-ws awaits each send before it takes the next
 * event of a subscription, and ws writes each message with its own system call: a dashboard
 * replaying 120 scans cost 120 round trips through the event loop and 120 writes. Here the
 * messages sent together leave together (the TCP socket is corked until the promise chain
 * that sends them has run), and a send resolves at once while the socket holds less than
 * SEND_HIGH_WATER_BYTES; above that it resolves when its bytes are written, which is what
 * slows a subscription down for a slow client (and lets its backlog limit drop it).
 */
export class WebSocketSender {
  private corked = false;

  constructor(
    private readonly socket: WebSocket,
    /** the TCP socket under `socket` (the one its upgrade came on) */
    private readonly connection: Duplex,
  ) {}

  send(data: string): Promise<void> {
    if (this.socket.readyState !== this.socket.OPEN) return Promise.resolve();
    this.corkUntilTurnEnds();
    if (this.socket.bufferedAmount < SEND_HIGH_WATER_BYTES) {
      // A failed write closes the socket, which ends its subscriptions: nothing to report here.
      this.socket.send(data, () => undefined);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => this.socket.send(data, (error) => (error ? reject(error) : resolve())));
  }

  private corkUntilTurnEnds(): void {
    if (this.corked) return;
    this.corked = true;
    this.connection.cork();
    // After the microtasks under way: a replay's sends chain through promises, so all of
    // them are in; not later (setImmediate would wait for every other socket's input too).
    process.nextTick(() => {
      this.corked = false;
      this.connection.uncork();
    });
  }
}
