import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Gateway } from '../../src/app/gateway';

/** Polls `condition` until it holds, failing after `timeoutMs`: for state with no event to wait on. */
export async function eventually(condition: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A real graphql-ws client over a real WebSocket, recording what a subscription delivers. */
export class TestSubscriber<T = Record<string, unknown>> {
  readonly events: T[] = [];
  readonly errors: unknown[] = [];
  completed = false;
  private readonly listeners = new Set<() => void>();

  private constructor(
    readonly client: Client,
    private readonly unsubscribe: () => void,
  ) {}

  static open<T>(
    baseUrl: string,
    query: string,
    variables: Record<string, unknown> = {},
    connectionParams: Record<string, unknown> = {},
  ): TestSubscriber<T> {
    const client = createClient({
      url: `${baseUrl.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams,
      lazy: false,
      retryAttempts: 0,
    });
    let subscriber: TestSubscriber<T> | undefined;
    const unsubscribe = client.subscribe<T>(
      { query, variables },
      {
        next: (result) => {
          if (result.errors) subscriber?.errors.push(...result.errors);
          if (result.data) subscriber?.events.push(result.data);
          subscriber?.notify();
        },
        error: (error) => {
          subscriber?.errors.push(error);
          subscriber?.notify();
        },
        complete: () => {
          if (subscriber) subscriber.completed = true;
          subscriber?.notify();
        },
      },
    );
    subscriber = new TestSubscriber<T>(client, unsubscribe);
    return subscriber;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Resolves when `predicate` holds for what has arrived; checked on each message, not on a timer. */
  waitFor(predicate: (subscriber: this) => boolean, timeoutMs = 5000, what = 'subscription events'): Promise<void> {
    if (predicate(this)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${this.events.length} events, errors ${JSON.stringify(this.errors)}`));
      }, timeoutMs);
      const check = () => {
        if (!predicate(this)) return;
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve();
      };
      this.listeners.add(check);
    });
  }

  waitForEvents(count: number, timeoutMs = 5000): Promise<void> {
    return this.waitFor((subscriber) => subscriber.events.length >= count, timeoutMs, `${count} events`);
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.client.dispose();
  }
}

/** Waits until the gateway's feed has `count` subscribers: their subscriptions are live. */
export function waitForSubscribers(gateway: Gateway, count: number, timeoutMs = 5000): Promise<void> {
  return eventually(() => gateway.services.feed.subscriberCount >= count, timeoutMs, `${count} subscribers`);
}
