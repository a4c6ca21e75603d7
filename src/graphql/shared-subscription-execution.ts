import {
  createSourceEventStream,
  execute,
  getOperationAST,
  Kind,
  print,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from 'graphql';

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Per published event, the result of each distinct operation: dropped with the event. */
const resultsByEvent = new WeakMap<object, Map<string, Result>>();

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

/**
 * The variables of an operation used nowhere but in arguments of its root fields that
 * only choose events (see subscribeSharingResults): they cannot change a result.
 */
function eventChoosingVariables(args: ExecutionArgs, eventChoosingFields: ReadonlySet<string>): ReadonlySet<string> {
  const operation = getOperationAST(args.document, args.operationName);
  if (!operation || operation.operation !== 'subscription') return new Set();
  const inEventChoosingArguments = new Map<string, number>();
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD || !eventChoosingFields.has(selection.name.value)) continue;
    for (const argument of selection.arguments ?? []) {
      visit(argument, {
        Variable: (node) => void inEventChoosingArguments.set(node.name.value, (inEventChoosingArguments.get(node.name.value) ?? 0) + 1),
      });
    }
  }
  if (inEventChoosingArguments.size === 0) return new Set();
  // Every use in the whole document (fragments included), declarations aside.
  const everywhere = new Map<string, number>();
  visit(args.document, {
    VariableDefinition: () => false,
    Variable: (node) => void everywhere.set(node.name.value, (everywhere.get(node.name.value) ?? 0) + 1),
  });
  return new Set([...inEventChoosingArguments].filter(([name, uses]) => everywhere.get(name) === uses).map(([name]) => name));
}

const keyParts = new WeakMap<DocumentNode, Map<string, { printed: string; ignored: ReadonlySet<string> }>>();

function operationKey(args: ExecutionArgs, eventChoosingFields: ReadonlySet<string>): string {
  let byOperation = keyParts.get(args.document);
  if (!byOperation) {
    byOperation = new Map();
    keyParts.set(args.document, byOperation);
  }
  const operationName = args.operationName ?? '';
  let parts = byOperation.get(operationName);
  if (!parts) {
    parts = { printed: print(args.document), ignored: eventChoosingVariables(args, eventChoosingFields) };
    byOperation.set(operationName, parts);
  }
  const { ignored } = parts;
  const variables = Object.entries(args.variableValues ?? {}).filter(([name]) => !ignored.has(name));
  return `${parts.printed}\u0000${operationName}\u0000${JSON.stringify(variables)}\u0000${scopeKey(args)}`;
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
 *
 * `eventChoosingFields`: root subscription fields whose arguments only choose which events
 * a subscriber gets (its resolver ignores them). Variables used only there are left out of
 * the comparison: dashboards resuming each `after:` their own cursor, or watching each
 * their own code, still share the execution of an event they both get.
 */
export function subscribeSharingResults(
  eventChoosingFields: ReadonlySet<string> = new Set(),
): (args: ExecutionArgs) => Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  return async (args) => {
    const stream = await createSourceEventStream(args);
    if (!isAsyncIterable(stream)) return stream as ExecutionResult;
    const key = operationKey(args, eventChoosingFields);
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
  };
}
