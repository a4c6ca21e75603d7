import type { FastifyReply } from 'fastify';
import type { Access } from '../access';

/**
 * The key a request for a capability URL (an image, a print sheet) presents: none at all
 * is fine (the URL itself is the right to fetch it); one that is sent must be a key, and
 * a refusal (401) has been sent when it is not. undefined: refused.
 */
export async function presentedAccess(
  authorization: string | undefined,
  authenticate: (authorization: unknown) => Promise<Access | undefined>,
  reply: FastifyReply,
): Promise<{ access: Access | undefined } | undefined> {
  if (authorization === undefined) return { access: undefined };
  const access = await authenticate(authorization);
  if (access) return { access };
  await reply.code(401).header('WWW-Authenticate', 'Bearer').type('text/plain; charset=utf-8').send('Unknown or revoked API key.\n');
  return undefined;
}

/** Whether an If-None-Match header names this strong ETag (or *, or its weak form). */
export function ifNoneMatchIncludes(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((candidate) => {
    const tag = candidate.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}
