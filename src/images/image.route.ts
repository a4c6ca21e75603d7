import type { FastifyPluginAsync } from 'fastify';
import type { Access } from '../access';
import { ifNoneMatchIncludes, presentedAccess } from './capability-url';
import type { ImageStore } from './image.store';

const IMAGE_ID = /^[0-9a-f-]{36}$/;

/**
 * GET /images/:imageId — stored code images (PNG, JPEG, and the SVG of LOCAL codes): immutable, so cached for a year and
 * revalidated by ETag. An image URL is a capability (its id is random, and only a key
 * that sees the code is handed it), so that <img>, print shops and chat previews can
 * fetch it without a key. A request that does present a key is held to it: an unknown
 * key is 401, a key outside the image's page gets 404, as if the image did not exist.
 */
export function imageRoutes(images: ImageStore, authenticate: (authorization: unknown) => Promise<Access | undefined>): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { imageId: string } }>('/images/:imageId', async (request, reply) => {
      const { imageId } = request.params;
      const access = await presentedAccess(request.headers.authorization, authenticate, reply);
      if (!access) return reply;
      const image = IMAGE_ID.test(imageId) ? await images.read(access.scope, imageId) : null;
      if (!image) return reply.code(404).type('text/plain; charset=utf-8').send('No such image.\n');
      const etag = `"${image.sha256}"`;
      reply.headers({
        ETag: etag,
        'Cache-Control': 'public, max-age=31536000, immutable',
        'X-Content-Type-Options': 'nosniff',
        // An SVG opened on its own is a document of this origin: it may show its embedded
        // center image (a data: URL) and nothing else, never run a script.
        ...(image.contentType === 'image/svg+xml' ? { 'Content-Security-Policy': "default-src 'none'; img-src data:" } : {}),
      });
      if (ifNoneMatchIncludes(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.code(200).type(image.contentType).send(image.bytes);
    });
  };
}
