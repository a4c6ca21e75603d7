import type { FastifyPluginAsync } from 'fastify';
import { fbtraceId, type MessengerCodeApi } from './messenger-code-api';

const GRAPH_VERSION = /^v\d+\.\d+$/;
/** The largest body the old endpoint could be sent: a few parameters. */
const MAX_BODY_BYTES = 16 * 1024;

/**
 * POST /<version>/me/messenger_codes (see MessengerCodeApi): parameters in a JSON body or a
 * form body, access_token in the query string or the form, as the Graph API took them.
 */
export function messengerCodeApiRoutes(api: MessengerCodeApi): FastifyPluginAsync {
  return async (app) => {
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: MAX_BODY_BYTES },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    app.setErrorHandler(async (error: Error & { statusCode?: number }, request, reply) => {
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        const message = error.statusCode === 413 ? 'The request body is too large' : 'The request body could not be parsed';
        return reply
          .code(400)
          .send({ error: { message: `(#100) ${message}`, type: 'OAuthException', code: 100, fbtrace_id: fbtraceId() } });
      }
      request.log.error({ err: error }, 'unexpected error in the Messenger Code API');
      return reply
        .code(500)
        .send({ error: { message: 'An unknown error occurred', type: 'OAuthException', code: 1, fbtrace_id: fbtraceId() } });
    });
    app.post<{ Params: { version: string }; Querystring: Record<string, unknown> }>(
      '/:version/me/messenger_codes',
      { bodyLimit: MAX_BODY_BYTES },
      async (request, reply) => {
        if (!GRAPH_VERSION.test(request.params.version)) return reply.code(404).type('text/plain; charset=utf-8').send('Not found.\n');
        const body =
          typeof request.body === 'object' && request.body !== null && !Array.isArray(request.body)
            ? (request.body as Record<string, unknown>)
            : {};
        const { access_token: formToken, ...params } = body;
        const answer = await api.generate(request.id, request.query.access_token ?? formToken, params);
        return reply.code(answer.status).send(answer.body);
      },
    );
  };
}
