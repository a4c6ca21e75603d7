import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

/** What is answered without making the child: the level methods, and `child` (made when called). */
const DEFERRED_PROPERTIES = new Set<string | symbol>(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'child']);

/**
 * A child logger that comes into being only when something is logged through it at an
 * enabled level (or it is otherwise used). Fastify makes one per request, and checks that it
 * has the level methods and `child` (a custom child factory is validated on every request);
 * a pino child with redaction costs about 2 µs, a few per cent of a webhook that, when all
 * goes well, logs nothing at all. So those are answered without making it.
 */
export function lazyChild(parent: Logger, bindings: Bindings, options?: ChildLoggerOptions): Logger {
  // A level of its own changes what is enabled: nothing to save, make it now.
  if (options?.level !== undefined) return parent.child(bindings, options);
  let child: Logger | undefined;
  const real = (): Logger => (child ??= parent.child(bindings, options));
  /** the level methods and `child`, made once per logger, on first access */
  const deferred = new Map<string | symbol, unknown>();
  const defer = (property: string | symbol): unknown => {
    if (property === 'child')
      return (childBindings: Bindings, childOptions?: ChildLoggerOptions) => real().child(childBindings, childOptions);
    return (...args: unknown[]) => {
      if (child === undefined && !parent.isLevelEnabled(property as Level)) return;
      (real()[property as Level] as (...logged: unknown[]) => void)(...args);
    };
  };
  return new Proxy(parent, {
    get(_parent, property) {
      if (child !== undefined) return Reflect.get(child, property, child);
      if (property === 'level') return parent.level;
      if (DEFERRED_PROPERTIES.has(property)) {
        let method = deferred.get(property);
        if (method === undefined) {
          method = defer(property);
          deferred.set(property, method);
        }
        return method;
      }
      const created = real();
      return Reflect.get(created, property, created);
    },
    set(_parent, property, value) {
      return Reflect.set(real(), property, value);
    },
  });
}
