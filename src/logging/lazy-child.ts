import type { Bindings, ChildLoggerOptions, Level, Logger } from 'pino';

const LEVEL_METHODS = new Set<string | symbol>(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);

/**
 * A child logger that comes into being only when something is logged through it at an
 * enabled level (or it is otherwise used). Fastify makes one per request; a pino child
 * with redaction costs about 2 µs, a few per cent of a webhook that, when all goes
 * well, logs nothing at all.
 */
export function lazyChild(parent: Logger, bindings: Bindings, options?: ChildLoggerOptions): Logger {
  // A level of its own changes what is enabled: nothing to save, make it now.
  if (options?.level !== undefined) return parent.child(bindings, options);
  let child: Logger | undefined;
  const real = (): Logger => (child ??= parent.child(bindings, options));
  return new Proxy(parent, {
    get(_parent, property) {
      if (child !== undefined) return Reflect.get(child, property, child);
      if (property === 'level') return parent.level;
      if (LEVEL_METHODS.has(property)) {
        return (...args: unknown[]) => {
          if (!parent.isLevelEnabled(property as Level)) return;
          (real()[property as Level] as (...logged: unknown[]) => void)(...args);
        };
      }
      const created = real();
      return Reflect.get(created, property, created);
    },
    set(_parent, property, value) {
      return Reflect.set(real(), property, value);
    },
  });
}
