import { createLogger } from '../../src/logging/logger';
import { lazyChild } from '../../src/logging/lazy-child';

function capture(level: 'info' | 'debug' = 'info') {
  const lines: string[] = [];
  const parent = createLogger({ level, destination: { write: (line: string) => void lines.push(line) } });
  let made = 0;
  const child = parent.child.bind(parent);
  // Counts the children pino is asked to make (the cost lazyChild avoids).
  parent.child = ((...args: Parameters<typeof parent.child>) => {
    made += 1;
    return child(...args);
  }) as typeof parent.child;
  return { parent, lines, made: () => made, entries: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('lazyChild', () => {
  it('makes no child for a request that logs nothing, or only below the level', () => {
    const { parent, lines, made } = capture('info');
    const log = lazyChild(parent, { reqId: 'r1' });
    log.debug({ stored: 1 }, 'webhook stored');
    log.trace('nothing');
    expect(made()).toBe(0);
    expect(lines).toEqual([]);
    expect(log.level).toBe('info');
  });

  it('makes no child when Fastify checks it is a logger (its level methods and child, on every request)', () => {
    const { parent, made } = capture('info');
    const log = lazyChild(parent, { reqId: 'r6' });
    // What fastify/lib/logger-factory.js validateLogger reads of a custom child factory's logger.
    for (const method of ['info', 'error', 'debug', 'fatal', 'warn', 'trace', 'child'] as const) {
      expect(typeof log[method]).toBe('function');
      expect(log[method]).toBe(log[method]);
    }
    expect(made()).toBe(0);
    // Asked for a child of its own, it is made, then that child.
    log.child({ component: 'webhook' });
    expect(made()).toBe(2);
  });

  it('gives a child of its own both bindings', () => {
    const lines: string[] = [];
    const parent = createLogger({ level: 'info', destination: { write: (line: string) => void lines.push(line) } });
    lazyChild(parent, { reqId: 'r7' }).child({ component: 'webhook' }).warn('from the grandchild');
    expect(lines.map((line) => JSON.parse(line) as unknown)).toEqual([
      expect.objectContaining({ level: 'warn', reqId: 'r7', component: 'webhook', message: 'from the grandchild' }),
    ]);
  });

  it('makes the child once, at the first enabled line, with its bindings on every line', () => {
    const { parent, made, entries } = capture('info');
    const log = lazyChild(parent, { reqId: 'r2' });
    log.warn({ reason: 'signature mismatch' }, 'webhook refused');
    log.error('second');
    expect(made()).toBe(1);
    expect(entries()).toEqual([
      expect.objectContaining({ level: 'warn', reqId: 'r2', reason: 'signature mismatch', message: 'webhook refused' }),
      expect.objectContaining({ level: 'error', reqId: 'r2', message: 'second' }),
    ]);
  });

  it('follows the parent level until it has a level of its own', () => {
    const { parent, entries } = capture('info');
    const log = lazyChild(parent, { reqId: 'r3' });
    parent.level = 'debug';
    log.debug('now enabled');
    expect(entries()).toEqual([expect.objectContaining({ level: 'debug', reqId: 'r3' })]);
    log.level = 'error';
    log.warn('now below the child level');
    expect(entries()).toHaveLength(1);
    expect(parent.level).toBe('debug');
  });

  it('redacts through the child as through the parent', () => {
    const { parent, entries } = capture('info');
    lazyChild(parent, { reqId: 'r4' }).warn({ psid: '123', authorization: 'Bearer k' }, 'redacted');
    expect(entries()[0]).toMatchObject({ psid: '[redacted]', authorization: '[redacted]', reqId: 'r4' });
  });

  it('makes the child at once when it is given a level of its own', () => {
    const { parent, made } = capture('info');
    const log = lazyChild(parent, { reqId: 'r5' }, { level: 'warn' });
    expect(made()).toBe(1);
    expect(log.level).toBe('warn');
  });
});
