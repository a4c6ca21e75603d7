import type { FastifyReply } from 'fastify';
import { Access } from '../access';

/**
 * Who asks for a capability URL (an image, a print sheet): the key presented, held to its
 * pages, or without a key the URL's holder (Access.capabilityUrl: the URL itself is the
 * right to fetch it). A key that is sent must be one: when it is not, a refusal (401) has
 * been sent and the answer is undefined.
 */
export async function presentedAccess(
  authorization: string | undefined,
  authenticate: (authorization: unknown) => Promise<Access | undefined>,
  reply: FastifyReply,
): Promise<Access | undefined> {
  if (authorization === undefined) return Access.capabilityUrl();
  const access = await authenticate(authorization);
  if (access) return access;
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
