import type { FastifyPluginAsync } from 'fastify';
import { Role } from '../access';
import { bearerToken, sameSecret } from '../auth/api-key.service';
import type { Services } from './services';

export interface OperationsOptions {
  metricsToken: string | undefined;
}

/** /healthz, /readyz and /metrics: what supervisors, load balancers and Prometheus read. */
export function operationsRoutes(services: Services, options: OperationsOptions): FastifyPluginAsync {
  const { metricsToken } = options;

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
      // METRICS_TOKEN (for Prometheus) or an ADMIN key; an open gateway is open here too,
      // unless METRICS_TOKEN is set.
      const presented = bearerToken(request.headers.authorization);
      const byToken = metricsToken !== undefined && presented !== undefined && sameSecret(presented, metricsToken);
      if (!byToken) {
        const access = await services.apiKeys.authenticate(request.headers.authorization);
        const admitted = access?.role === Role.ADMIN && !(access.principal.kind === 'open' && metricsToken !== undefined);
        if (!admitted) {
          const forbidden = access !== undefined && access.principal.kind !== 'open';
          if (!forbidden) reply.header('WWW-Authenticate', 'Bearer');
          return reply
            .code(forbidden ? 403 : 401)
            .type('text/plain; charset=utf-8')
            .send(
              forbidden
                ? 'An ADMIN key or METRICS_TOKEN is required; this key is not ADMIN.\n'
                : 'A bearer token is required: an ADMIN key or METRICS_TOKEN.\n',
            );
        }
      }
      return reply.type(services.metrics.contentType).send(await services.metrics.render());
    });
  };
}
