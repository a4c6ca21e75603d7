import 'reflect-metadata';
import { ConfigError, loadConfig, type GatewayConfig } from './config';
import { logger } from './logger';
import { startGateway } from './server';

/** Hard limit for a graceful stop; a supervisor sends SIGKILL soon after. */
const SHUTDOWN_DEADLINE_MS = 9_500;

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

  const gateway = await startGateway(config);
  logger.info('gateway listening', {
    url: gateway.url,
    graphql: `${gateway.publicUrl}/graphql`,
    database: config.database.kind,
    codeProvider: config.codeProvider,
    pageId: config.defaultPageId,
  });

  const shutdown = (signal: NodeJS.Signals) => {
    logger.info('stopping', { signal });
    const deadline = setTimeout(() => {
      logger.error('graceful stop exceeded its deadline; exiting');
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS);
    deadline.unref();
    gateway.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error('error while stopping', { error: (error as Error).message });
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((error: unknown) => {
  logger.error('gateway failed to start', { error: error instanceof Error ? error.message : String(error) });
  process.exit(1);
});
