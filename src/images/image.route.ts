import { Router } from 'express';
import type { ImageStore } from './image.store';

const IMAGE_ID = /^[0-9a-f-]{36}$/;

/** GET /images/:id — stored code images: immutable, so cached for a year and revalidated by ETag. */
export function imageRouter(images: ImageStore): Router {
  const router = Router();
  router.get('/images/:imageId', async (request, response, next) => {
    try {
      const { imageId } = request.params;
      const image = IMAGE_ID.test(imageId) ? await images.read(imageId) : null;
      if (!image) {
        response.status(404).type('text/plain').send('No such image.\n');
        return;
      }
      const etag = `"${image.sha256}"`;
      response.set({
        ETag: etag,
        'Cache-Control': 'public, max-age=31536000, immutable',
        'X-Content-Type-Options': 'nosniff',
      });
      if (ifNoneMatchIncludes(request.get('If-None-Match'), etag)) {
        response.status(304).end();
        return;
      }
      response.status(200).type(image.contentType).send(image.bytes);
    } catch (error) {
      next(error);
    }
  });
  return router;
}

function ifNoneMatchIncludes(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
