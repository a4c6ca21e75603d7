import { createSourceEventStream, execute, print, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Per published event, the result of each distinct operation: dropped with the event. */
const resultsByEvent = new WeakMap<object, Map<string, Result>>();
const printedDocuments = new WeakMap<DocumentNode, string>();

/**
 * What a result depends on besides the event: the subscriber's role and pages (the schema
 * guard withholds values outside them and enforces field rules by role), so subscribers share
 * a result only with subscribers of the same scope.
 */
function scopeKey(args: ExecutionArgs): string {
  const access = (args.contextValue as { request?: { access?: { role: string; pageIds: readonly string[] | null } } } | undefined)?.request
    ?.access;
  return access ? `${access.role}\u0000${access.pageIds === null ? '*' : JSON.stringify(access.pageIds)}` : '';
}

function operationKey(args: ExecutionArgs): string {
  let printed = printedDocuments.get(args.document);
  if (printed === undefined) {
    printed = print(args.document);
    printedDocuments.set(args.document, printed);
  }
  return `${printed}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? {})}\u0000${scopeKey(args)}`;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/** Maps an async iterator, passing return() through so the source is released when a client stops. */
function mapAsyncIterator<T, U>(source: AsyncIterable<T>, map: (value: T) => U | Promise<U>): AsyncIterableIterator<U> {
  const iterator = source[Symbol.asyncIterator]();
  // Not an async generator function: its return() would wait for a pending next(),
  // i.e. for the next event, before the subscriber is released.
  const mapped: AsyncIterableIterator<U> = {
    async next() {
      const next = await iterator.next();
      return next.done ? { value: undefined, done: true } : { value: await map(next.value), done: false };
    },
    async return() {
      await iterator.return?.();
      return { value: undefined, done: true };
    },
    async throw(error: unknown) {
      await iterator.return?.();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  return mapped;
}

/**
 * graphql's `subscribe`, except that subscribers running the same operation with the
 * same variables share one execution per event instead of executing it once each: a
 * thousand dashboards on one code cost one execution per scan. This holds because
 * subscription resolvers read only the event and the gateway-wide services, never
 * the subscriber's connection, and results are shared only within one scope (role and
 * pages): what the schema guard lets through depends on it.
 */
export async function subscribeSharingResults(args: ExecutionArgs): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!isAsyncIterable(stream)) return stream as ExecutionResult;
  const key = operationKey(args);
  return mapAsyncIterator(stream, (event) => {
    if (typeof event !== 'object' || event === null) return execute({ ...args, rootValue: event });
    let results = resultsByEvent.get(event);
    if (!results) {
      results = new Map();
      resultsByEvent.set(event, results);
    }
    let result = results.get(key);
    if (!result) {
      result = execute({ ...args, rootValue: event });
      results.set(key, result);
    }
    return result;
  });
}
