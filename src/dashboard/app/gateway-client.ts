/**
 * The dashboard's data layer: the typed documents of client/generated (GraphQL Code
 * Generator's client preset, from client/operations/*.graphql) sent over HTTP to /graphql,
 * and the live feed over graphql-ws on the same origin, with the key of this tab.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { DashboardScannedDocument, type DashboardScannedSubscription } from '../../../client/generated/graphql';

/** Shared with GraphiQL (src/graphiql/app): one key typed in either serves both for this tab. */
const KEY_STORAGE = 'messenger-code-gateway:api-key';

export function storedKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

export function storeKey(key: string): void {
  try {
    if (key === '') sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode): the key still works until the page is reloaded.
  }
}

/** What went wrong with a request, in words for the person at the screen. */
export class GatewayError extends Error {
  constructor(
    message: string,
    /** extensions.code of the first GraphQL error, or NETWORK when nothing came back */
    readonly code: string,
  ) {
    super(message);
  }

  /** The key is missing, unknown, revoked, or not allowed what was asked. */
  get isKeyProblem(): boolean {
    return this.code === 'UNAUTHENTICATED' || this.code === 'FORBIDDEN';
  }
}

const printed = new WeakMap<DocumentNode, string>();
function textOf(document: DocumentNode): string {
  let text = printed.get(document);
  if (text === undefined) {
    text = print(document);
    printed.set(document, text);
  }
  return text;
}

function authorization(key: string): Record<string, string> {
  return key === '' ? {} : { authorization: `Bearer ${key}` };
}

interface GraphQLResponse<Result> {
  data?: Result | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Runs a query of the typed client and returns its data, or throws a GatewayError. */
export async function request<Result, Variables>(
  document: TypedDocumentNode<Result, Variables>,
  variables: Variables,
  key: string,
): Promise<Result> {
  let response: Response;
  try {
    response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authorization(key) },
      body: JSON.stringify({ query: textOf(document), variables }),
    });
  } catch {
    throw new GatewayError('The gateway cannot be reached. Retrying…', 'NETWORK');
  }
  let body: GraphQLResponse<Result>;
  try {
    body = (await response.json()) as GraphQLResponse<Result>;
  } catch {
    throw new GatewayError(`The gateway answered ${response.status} without GraphQL.`, 'NETWORK');
  }
  const first = body.errors?.[0];
  if (first || !body.data) {
    throw new GatewayError(
      first?.message ?? `The gateway answered ${response.status} without data.`,
      first?.extensions?.code ?? 'INTERNAL',
    );
  }
  return body.data;
}

export type LiveScan = DashboardScannedSubscription['scanned'];

export type LiveState =
  | { kind: 'connecting' }
  | { kind: 'live' }
  | { kind: 'reconnecting'; inMs: number }
  /** The gateway closed the socket (4403: the key) or refused the subscription: no retry. */
  | { kind: 'refused'; message: string; keyProblem: boolean };

export interface LiveOptions {
  key: string;
  pageId: string | null;
  onScan: (scan: LiveScan) => void;
  onState: (state: LiveState) => void;
  /** When the socket is up: the first time, and after each reconnect. */
  onConnected: (connection: Connection) => void;
}

/**
 * first: the first connection. resumed: a reconnect that resumed from the last scan's
 * streamCursor (the gateway replays what was stored meanwhile, nothing is missed); a reconnect
 * with neither (no scan received yet) must load what was stored meanwhile.
 */
export type Connection = 'first' | 'resumed' | 'fresh';

/** Close codes after which retrying with the same key cannot help. */
const FATAL_CLOSE_CODES = new Set([4400, 4401, 4403, 4406, 4409, 4429]);
const KEEP_ALIVE_MS = 10_000;
/** A pong later than this after our ping: the connection is dead even if the browser has not noticed. */
const PONG_TIMEOUT_MS = 5_000;
const MAX_BACKOFF_MS = 15_000;

function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === 'object' && value !== null && 'code' in value && typeof (value as { code: unknown }).code === 'number';
}

function webSocketUrl(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;
}

/**
 * Subscribes to the scans of a page and keeps the subscription up: it remembers the
 * streamCursor of the last scan received, and when the socket drops it subscribes again
 * after a growing pause with that cursor as `after`, so the gateway first replays every scan
 * stored meanwhile, then continues live (no gap, no duplicate). The retry loop is ours
 * (graphql-ws's own is off) because each new subscription must carry the latest cursor.
 * Returns the stop function.
 */
export function startLive(options: LiveOptions): () => void {
  let stopped = false;
  let failures = 0;
  let connections = 0;
  /** streamCursor of the last scan received; undefined until one arrives. */
  let cursor: string | undefined;
  /** The cursor the current subscription resumed from. */
  let resumedFrom: string | undefined;
  let unsubscribe: (() => void) | undefined;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let pongTimer: ReturnType<typeof setTimeout> | undefined;
  let socket: WebSocket | undefined;

  const client: Client = createClient({
    url: webSocketUrl(),
    lazy: true,
    retryAttempts: 0,
    keepAlive: KEEP_ALIVE_MS,
    connectionParams: () => authorization(options.key),
    on: {
      connected: (connected) => {
        socket = connected as WebSocket;
        failures = 0;
        connections += 1;
        options.onState({ kind: 'live' });
        options.onConnected(connections === 1 ? 'first' : resumedFrom !== undefined ? 'resumed' : 'fresh');
      },
      ping: (received) => {
        if (received) return;
        pongTimer = setTimeout(() => socket?.readyState === WebSocket.OPEN && socket.close(4499, 'No pong'), PONG_TIMEOUT_MS);
      },
      pong: (received) => {
        if (received) clearTimeout(pongTimer);
      },
      closed: () => {
        clearTimeout(pongTimer);
        socket = undefined;
      },
    },
  });

  // A laptop that goes offline keeps its dead socket for minutes: drop it at once.
  const onOffline = () => socket?.close(4499, 'Offline');
  window.addEventListener('offline', onOffline);

  const retry = () => {
    if (stopped) return;
    failures += 1;
    const inMs = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (failures - 1)) * (0.75 + Math.random() * 0.5);
    options.onState({ kind: 'reconnecting', inMs });
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      subscribe();
    }, inMs);
  };
  // Back online during a pause: try now rather than at the end of the pause.
  const onOnline = () => {
    if (retryTimer === undefined) return;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    subscribe();
  };
  window.addEventListener('online', onOnline);

  function subscribe(): void {
    if (stopped) return;
    resumedFrom = cursor;
    unsubscribe = client.subscribe<DashboardScannedSubscription>(
      { query: textOf(DashboardScannedDocument), variables: { pageId: options.pageId, after: cursor ?? null } },
      {
        next: (result) => {
          if (!result.data) return;
          cursor = result.data.scanned.streamCursor;
          options.onScan(result.data.scanned);
        },
        error: (error: unknown) => {
          if (stopped) return;
          if (Array.isArray(error)) {
            // GraphQL errors of the subscription itself (e.g. a page the key may not see).
            const first = error[0] as { message?: string; extensions?: { code?: string; field?: string } } | undefined;
            const code = first?.extensions?.code;
            if (code === 'BAD_USER_INPUT' && first?.extensions?.field === 'after' && resumedFrom !== undefined) {
              // A cursor the gateway no longer takes: subscribe without one, and load what may have been missed.
              cursor = undefined;
              subscribe();
              options.onConnected('fresh');
              return;
            }
            const message = first?.message ?? 'The gateway refused the live feed.';
            options.onState({ kind: 'refused', message, keyProblem: code === 'UNAUTHENTICATED' || code === 'FORBIDDEN' });
            return;
          }
          if (isCloseEvent(error) && FATAL_CLOSE_CODES.has(error.code)) {
            const keyProblem = error.code === 4403;
            const message = keyProblem
              ? 'The gateway refused this key for the live feed.'
              : `The live feed was closed: ${error.reason || error.code}.`;
            options.onState({ kind: 'refused', message, keyProblem });
            return;
          }
          retry();
        },
        // The server ends a subscription only when it goes away (restart, shutdown).
        complete: retry,
      },
    );
  }

  options.onState({ kind: 'connecting' });
  subscribe();

  return () => {
    stopped = true;
    clearTimeout(retryTimer);
    clearTimeout(pongTimer);
    window.removeEventListener('offline', onOffline);
    window.removeEventListener('online', onOnline);
    unsubscribe?.();
    void client.dispose();
  };
}
