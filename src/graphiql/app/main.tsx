// Browser entry of the self-hosted GraphiQL served at GET /graphql.
// Bundled by scripts/build-graphiql.mjs; type-checked by esbuild only (see tsconfig "exclude").
import { createGraphiQLFetcher, type Fetcher, type FetcherOpts, type FetcherParams } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { getOperationAST, type GraphQLFormattedError } from 'graphql';
import { createClient, type Client, type ExecutionResult, type FormattedExecutionResult } from 'graphql-ws';
import { useState, type FormEvent } from 'react';
import { createRoot } from 'react-dom/client';
import 'graphiql/style.css';
import './app.css';

/** Hashed worker URLs, injected by the build (see `define` in scripts/build-graphiql.mjs). */
declare const GRAPHIQL_WORKER_URLS: Readonly<Record<'editor' | 'json' | 'graphql', string>>;

interface MonacoEnvironment {
  getWorker(workerId: string, label: string): Worker;
}

// Monaco asks for a worker per language label. The default GraphiQL setups
// either rely on a bundler's `?worker` import or fetch from esm.sh, so the
// mapping is done here against our own, separately bundled worker files.
(globalThis as typeof globalThis & { MonacoEnvironment?: MonacoEnvironment }).MonacoEnvironment = {
  getWorker(_workerId, label) {
    switch (label) {
      case 'json':
        return new Worker(GRAPHIQL_WORKER_URLS.json, { name: 'json' });
      case 'graphql':
        return new Worker(GRAPHIQL_WORKER_URLS.graphql, { name: 'graphql' });
      default:
        return new Worker(GRAPHIQL_WORKER_URLS.editor, { name: label });
    }
  },
};

// Monaco cancels its own pending work (a hover, a highlight) as the editor changes, and some of
// its paths leave that cancellation as an unhandled rejection (microsoft/monaco-editor#2382,
// #4138): an error in the console that is no fault. Monaco's own handler ignores exactly this
// signature (isCancellationError); so does the page. Anything else is reported as usual.
const isMonacoCancellation = (error: unknown): boolean =>
  error instanceof Error && error.name === 'Canceled' && error.message === 'Canceled';
window.addEventListener('unhandledrejection', (event) => {
  if (isMonacoCancellation(event.reason)) event.preventDefault();
});
window.addEventListener(
  'error',
  (event) => {
    if (isMonacoCancellation(event.error)) event.preventDefault();
  },
  true,
);

// The page is served by the GraphQL endpoint itself, so the endpoint is this
// page's URL; deriving it keeps http/https and ws/wss in step behind TLS proxies.
const endpoint = new URL(window.location.href);
endpoint.search = '';
endpoint.hash = '';
endpoint.pathname = endpoint.pathname.replace(/\/+$/, '') || '/graphql';
const httpUrl = endpoint.href;
const wsEndpoint = new URL(endpoint.href);
wsEndpoint.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
const wsUrl = wsEndpoint.href;

const DEFAULT_QUERY = `# Messenger Code gateway
#
# Run: Ctrl-Enter / Cmd-Enter. Schema docs: side bar.
#
# Authentication: put your API key in the "API key" field
# above (kept for this browser tab only). Queries, schema
# loading and subscriptions send it; an "Authorization"
# typed in the Headers editor below takes precedence.

query Codes {
  codes(first: 10) {
    edges {
      node {
        id
        ref
        scanCount
        imageUrl
      }
    }
  }
}

# Live scans, pushed over WebSocket:
#
# subscription Scans {
#   scanned {
#     id
#     ref
#     kind
#     code {
#       scanCount
#     }
#   }
# }
`;

/** Header names are case-insensitive, and the headers editor accepts any JSON value. */
function authorizationFrom(headers: FetcherOpts['headers']): string | undefined {
  if (!headers) return undefined;
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'authorization' && typeof value === 'string' && value.trim() !== '') {
      return value;
    }
  }
  return undefined;
}

/** Protocol-level closes (key refused, bad request, ...) will not heal by reconnecting. */
function isRetryable(errOrCloseEvent: unknown): boolean {
  if (errOrCloseEvent instanceof CloseEvent) return errOrCloseEvent.code < 4000 || errOrCloseEvent.code > 4999;
  return false;
}

/**
 * A bare CloseEvent would print as `{}`, and an Error with its bundle stack
 * trace; a formatted GraphQL error prints like the server's own errors.
 */
function describeSocketError(error: unknown): unknown {
  if (!(error instanceof CloseEvent)) return error;
  const hint = error.code === 4403 ? ' - check "Authorization" in the request headers' : '';
  const described: GraphQLFormattedError = {
    message: `WebSocket closed: ${error.code} ${error.reason}`.trim() + hint,
  };
  return described;
}

type SocketResult = FormattedExecutionResult<Record<string, unknown>, unknown>;

/**
 * Not the toolkit's WebSocket fetcher: it rejects an unobserved promise on
 * every subscription error (an "Uncaught (in promise)" per refused key).
 * graphql-ws' own iterator is passed through (only its errors are translated),
 * so GraphiQL's stop button reaches its return(), which completes the
 * subscription at once instead of at the next pushed value.
 */
function subscribeOver(client: Client, params: FetcherParams): AsyncIterableIterator<SocketResult> {
  const results = client.iterate({
    query: params.query,
    operationName: params.operationName,
    variables: params.variables as Record<string, unknown> | undefined,
  });
  const iterator: AsyncIterableIterator<SocketResult> = {
    next: () =>
      results.next().catch((error: unknown) => {
        throw describeSocketError(error);
      }),
    return: () => results.return?.() ?? Promise.resolve({ done: true, value: undefined }),
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** Where the key typed in the key field lives: this tab's session, gone when the tab closes. */
const KEY_STORAGE = 'messenger-code-gateway:api-key';

function storedKey(): string {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

/** The key of the key field, as the fetcher reads it at each call. */
let fieldKey = storedKey();

/** The Authorization of a call: the headers editor's, else the key field's. */
function authorizationOf(headers: FetcherOpts['headers']): string | undefined {
  return authorizationFrom(headers) ?? (fieldKey === '' ? undefined : `Bearer ${fieldKey}`);
}

/**
 * Prettify with Prettier's standalone build and its GraphQL plugin, loaded on first use
 * (GraphiQL's default imports the plugin in a shape the bundle does not resolve, and
 * fails with "Couldn't resolve parser graphql").
 */
async function prettify(query: string): Promise<string> {
  const [prettier, graphqlPlugin] = await Promise.all([import('prettier/standalone'), import('prettier/plugins/graphql')]);
  return prettier.format(query, { parser: 'graphql', plugins: [graphqlPlugin] });
}

// Queries and mutations: the toolkit's plain POST, which also forwards every
// header typed in the headers editor, Authorization included.
const httpFetcher = createGraphiQLFetcher({
  url: httpUrl,
  // graphql 16 has no @defer/@stream, so multipart responses never happen.
  enableIncrementalDelivery: false,
});

let socket: { readonly authorization: string | undefined; readonly client: Client } | undefined;

/**
 * The server checks the key once per socket, in connection_init, so a key typed
 * into the headers editor only takes effect on a new socket: one client per key,
 * replacing (and closing) the previous one when the key changes.
 */
function socketFor(authorization: string | undefined): Client {
  if (socket && socket.authorization === authorization) return socket.client;
  void socket?.client.dispose();
  const client = createClient({
    url: wsUrl,
    // Connect on the first subscription, disconnect after the last one.
    lazy: true,
    connectionParams: () => (authorization === undefined ? {} : { authorization }),
    shouldRetry: isRetryable,
  });
  socket = { authorization, client };
  return client;
}

const fetcher: Fetcher = (params, opts) => {
  const operation = opts?.documentAST && getOperationAST(opts.documentAST, params.operationName ?? undefined);
  if (operation?.operation === 'subscription') {
    // The toolkit's result type claims graphql-js GraphQLError instances; what
    // arrives over any wire is the formatted (plain JSON) shape, which is all GraphiQL prints.
    return subscribeOver(socketFor(authorizationOf(opts?.headers)), params) as AsyncIterable<ExecutionResult>;
  }
  const authorization = authorizationOf(opts?.headers);
  const headers =
    authorizationFrom(opts?.headers) === undefined && authorization ? { ...opts?.headers, Authorization: authorization } : opts?.headers;
  return httpFetcher(params, { ...opts, headers });
};

/**
 * The key field above GraphiQL. Using a key re-mounts GraphiQL, so the schema is loaded
 * again with it (editors keep their content: GraphiQL stores it in localStorage).
 */
function App() {
  const [key, setKey] = useState(fieldKey);
  const [typed, setTyped] = useState(fieldKey);
  const use = (next: string) => {
    fieldKey = next.trim();
    try {
      if (fieldKey === '') sessionStorage.removeItem(KEY_STORAGE);
      else sessionStorage.setItem(KEY_STORAGE, fieldKey);
    } catch {
      // Storage refused (private mode): the key still works until the page is reloaded.
    }
    setTyped(fieldKey);
    setKey(fieldKey);
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    use(typed);
  };
  return (
    <div className="gateway-app">
      <form className="gateway-key-bar" onSubmit={submit} aria-label="API key">
        <label htmlFor="gateway-api-key">API key</label>
        <input
          id="gateway-api-key"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="mcg_… (none needed on an open gateway)"
          value={typed}
          onChange={(event) => setTyped(event.target.value)}
        />
        <button type="submit">Use</button>
        <button type="button" onClick={() => use('')} disabled={key === '' && typed === ''}>
          Forget
        </button>
        <span className="gateway-key-state" role="status">
          {key === '' ? 'no key: requests go without one' : `using ${key.slice(0, 12)}… for this tab`}
        </span>
      </form>
      <div className="gateway-graphiql">
        <GraphiQL key={key} fetcher={fetcher} defaultQuery={DEFAULT_QUERY} onPrettifyQuery={prettify} />
      </div>
    </div>
  );
}

const container = document.getElementById('graphiql');
if (!container) throw new Error('GraphiQL container #graphiql is missing from index.html');
createRoot(container).render(<App />);
