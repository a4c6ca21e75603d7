import 'reflect-metadata';
import { startGateway } from './app/gateway';
import { ConfigError, loadConfig, type GatewayConfig } from './config';
import { createLogger, type Logger } from './logging/logger';

/** Hard limit for a graceful stop; a supervisor sends SIGKILL soon after. */
const SHUTDOWN_DEADLINE_MS = 9_500;

/** Longest wait for the log to reach its destination before exiting anyway. */
const LOG_FLUSH_TIMEOUT_MS = 1_000;

/**
 * Exits once every log line written so far is out. Lines are written asynchronously;
 * exiting with a write in flight could print the last lines out of order, or lose them.
 */
function exitAfterFlush(logger: Logger, code: number): void {
  const fallback = setTimeout(() => process.exit(code), LOG_FLUSH_TIMEOUT_MS);
  logger.flush(() => {
    clearTimeout(fallback);
    process.exit(code);
  });
}

/** One line a person can act on, for the failures a start usually meets. */
function startFailure(error: unknown, config: GatewayConfig): string {
  const { code, message } = error as { code?: string; message?: string };
  if (code === 'EADDRINUSE') return `Port ${config.port} on ${config.host} is already in use: stop what uses it or set PORT.`;
  if (code === 'EACCES') return `Not allowed to listen on port ${config.port}: choose a port above 1023 with PORT.`;
  if (code === 'EADDRNOTAVAIL') return `HOST ${config.host} is not an address of this machine.`;
  return `The gateway failed to start: ${message ?? String(error)}`;
}

async function main(): Promise<void> {
  let config: GatewayConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ level: config.logLevel });

  let gateway;
  try {
    gateway = await startGateway(config, { logger });
  } catch (error) {
    process.stderr.write(`${startFailure(error, config)}\n`);
    exitAfterFlush(logger, 1);
    return;
  }
  logger.info(
    {
      url: gateway.url,
      graphql: `${gateway.publicUrl}/graphql`,
      database: config.database.kind,
      codeProvider: config.codeProvider,
      pageId: config.defaultPageId,
    },
    'gateway listening',
  );

  const running = gateway;
  const shutdown = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopping');
    const deadline = setTimeout(() => {
      logger.error('graceful stop exceeded its deadline; exiting');
      exitAfterFlush(logger, 1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    running.stop().then(
      () => {
        logger.info('stopped');
        exitAfterFlush(logger, 0);
      },
      (error: unknown) => {
        logger.error({ err: error }, 'error while stopping');
        exitAfterFlush(logger, 1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  process.stderr.write(`The gateway failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
