import type { FastifyPluginAsync } from 'fastify';
import { bearerToken, sameSecret } from '../auth/api-keys';
import type { Services } from './services';

export interface OperationsOptions {
  adminApiKey: string | undefined;
  metricsToken: string | undefined;
}

/** /healthz, /readyz and /metrics: what supervisors, load balancers and Prometheus read. */
export function operationsRoutes(services: Services, options: OperationsOptions): FastifyPluginAsync {
  const metricsKeys = [options.adminApiKey, options.metricsToken].filter((key): key is string => key !== undefined);

  return async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));

    app.get('/readyz', async (request, reply) => {
      const database = await services.db.ping().then(
        () => 'ok',
        (error: Error) => {
          request.log.warn({ error: error.message }, 'readiness check: database unreachable');
          return 'unreachable';
        },
      );
      const redis = await services.feed.redisReady();
      const checks = { database, ...(redis === undefined ? {} : { redis: redis ? 'ok' : 'unreachable' }) };
      const ready = database === 'ok' && redis !== false;
      return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', ...checks });
    });

    app.get('/metrics', async (request, reply) => {
      if (metricsKeys.length > 0) {
        const presented = bearerToken(request.headers.authorization);
        if (presented === undefined || !metricsKeys.some((key) => sameSecret(presented, key))) {
          return reply
            .code(401)
            .header('WWW-Authenticate', 'Bearer')
            .type('text/plain; charset=utf-8')
            .send('A bearer token is required: ADMIN_API_KEY or METRICS_TOKEN.\n');
        }
      }
      return reply.type(services.metrics.contentType).send(await services.metrics.render());
    });
  };
}
