import type { FastifyPluginAsync } from 'fastify';
import type { Access } from '../access';
import { ifNoneMatchIncludes, presentedAccess } from '../images/capability-url';
import type { PrintSheetService } from './print-sheet.service';

const SHEET_ID = /^[0-9a-f-]{36}$/;

/**
 * GET /print-sheets/:id — a stored PDF, served like code images: immutable, cached for a
 * year, revalidated by ETag; the URL is a capability, and a request presenting a key is
 * held to it (401 unknown key, 404 when the sheet shows a page outside the key's).
 */
export function printSheetRoutes(
  sheets: PrintSheetService,
  authenticate: (authorization: unknown) => Promise<Access | undefined>,
): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { id: string } }>('/print-sheets/:id', async (request, reply) => {
      const access = await presentedAccess(request.headers.authorization, authenticate, reply);
      if (!access) return reply;
      const sheet = SHEET_ID.test(request.params.id) ? await sheets.read(access.scope, request.params.id) : null;
      if (!sheet) return reply.code(404).type('text/plain; charset=utf-8').send('No such print sheet.\n');
      const etag = `"${sheet.sha256}"`;
      reply.headers({
        ETag: etag,
        'Cache-Control': 'public, max-age=31536000, immutable',
        'Content-Disposition': 'inline; filename="codes.pdf"',
        'X-Content-Type-Options': 'nosniff',
      });
      if (ifNoneMatchIncludes(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.code(200).type('application/pdf').send(sheet.bytes);
    });
  };
}
