import type { FastifyPluginAsync } from 'fastify';
import type { ImageStore } from './image.store';

const IMAGE_ID = /^[0-9a-f-]{36}$/;

function ifNoneMatchIncludes(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** GET /images/:imageId — stored code images: immutable, so cached for a year and revalidated by ETag. */
export function imageRoutes(images: ImageStore): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { imageId: string } }>('/images/:imageId', async (request, reply) => {
      const { imageId } = request.params;
      const image = IMAGE_ID.test(imageId) ? await images.read(imageId) : null;
      if (!image) return reply.code(404).type('text/plain; charset=utf-8').send('No such image.\n');
      const etag = `"${image.sha256}"`;
      reply.headers({
        ETag: etag,
        'Cache-Control': 'public, max-age=31536000, immutable',
        'X-Content-Type-Options': 'nosniff',
      });
      if (ifNoneMatchIncludes(request.headers['if-none-match'], etag)) return reply.code(304).send();
      return reply.code(200).type(image.contentType).send(image.bytes);
    });
  };
}
