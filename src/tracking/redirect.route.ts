import type { FastifyPluginAsync } from 'fastify';
import type { CodeService } from '../codes/code.service';
import { mMeLink } from '../codes/m-me-link';
import type { VisitCounter } from './visit-counter';

const SLUG = /^[0-9A-Za-z]{1,32}$/;

/**
 * GET <PUBLIC_URL>/s/<slug>: a REDIRECT code's link. 302 to the code's m.me link, and one
 * visit counted; HEAD answers the same and counts nothing (link checkers, chat previews);
 * an unknown slug is 404. Never cached, so every scan reaches the gateway. Nothing about
 * the person (address, user agent) is stored or logged.
 */
export function redirectRoutes(codes: CodeService, visits: VisitCounter): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { slug: string } }>('/s/:slug', async (request, reply) => {
      const { slug } = request.params;
      const code = SLUG.test(slug) ? await codes.findRedirect(slug) : undefined;
      reply.header('Cache-Control', 'no-store').header('Referrer-Policy', 'no-referrer');
      if (!code) return reply.code(404).type('text/plain; charset=utf-8').send('No such link.\n');
      // Fastify answers HEAD with this GET handler; only a GET is a visit.
      if (request.method === 'GET') visits.record(code.id);
      return reply.redirect(mMeLink(code.pageId, code.ref), 302);
    });
  };
}
