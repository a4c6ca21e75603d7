/**
 * One JSON line per event, for log collectors. Callers pass no personal data
 * (no PSIDs, no tokens): there is no scrubbing here to rely on.
 */
type Fields = Record<string, unknown>;
export type LogLevel = 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { info: 0, warn: 1, error: 2, silent: 3 };
let minimumLevel: LogLevel = 'info';

function write(level: Exclude<LogLevel, 'silent'>, message: string, fields: Fields): void {
  if (RANK[level] < RANK[minimumLevel]) return;
  const stream = level === 'info' ? process.stdout : process.stderr;
  stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

export const logger = {
  setLevel: (level: LogLevel) => {
    minimumLevel = level;
  },
  info: (message: string, fields: Fields = {}) => write('info', message, fields),
  warn: (message: string, fields: Fields = {}) => write('warn', message, fields),
  error: (message: string, fields: Fields = {}) => write('error', message, fields),
};
