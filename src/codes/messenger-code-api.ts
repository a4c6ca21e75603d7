import { randomBytes } from 'node:crypto';
import { Access } from '../access';
import type { RequestContext } from '../context';
import { BadUserInputError, ForbiddenError, NotFoundError, PublicError, RateLimitedError } from '../errors';
import type { PageService } from '../pages/page.service';
import type { CodeService } from './code.service';

/** A Graph API answer: its status and JSON body. */
export interface GraphAnswer {
  status: number;
  body: unknown;
}

/** Who a Graph API caller's access_token is, when it is an API key of ours. */
export type KeyAuthenticator = (key: string) => Promise<Access | undefined>;

/** The id Graph API errors carry for support requests: here only unique, never looked up. */
export const fbtraceId = (): string => `A${randomBytes(12).toString('base64url')}`;

/** An error as the Graph API words it. */
function graphError(status: number, code: number, message: string, type = 'OAuthException'): GraphAnswer {
  return { status, body: { error: { message, type, code, fbtrace_id: fbtraceId() } } };
}

const INVALID_TOKEN = () => graphError(400, 190, 'Invalid OAuth access token - Cannot parse access token');
const invalidParameter = (message: string) => graphError(400, 100, `(#100) ${message}`);

/** The parameter names of the Graph API, for a field of generateCode. */
const GRAPH_PARAMETER: Record<string, string> = { imageSize: 'image_size', 'data.ref': 'data[ref]', type: 'type', pageId: 'page' };

function parsedData(data: unknown): { ref?: unknown } | undefined | 'invalid' {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string') {
    try {
      return parsedData(JSON.parse(data));
    } catch {
      return 'invalid';
    }
  }
  return typeof data === 'object' && !Array.isArray(data) ? (data as { ref?: unknown }) : 'invalid';
}

/**
 * POST /<version>/me/messenger_codes, as the Graph API served it until 2019: scripts
 * written against it (the seed's curl) run unchanged against the gateway, host aside.
 * The access_token is a registered page's own token (that page's code), or an API key of
 * role EDITOR or ADMIN (its only page, else the default page); answers and errors are
 * the Graph API's shapes and codes (190: the token, 100: a parameter).
 */
export class MessengerCodeApi {
  constructor(
    private readonly codes: CodeService,
    private readonly pages: PageService,
    private readonly authenticateKey: KeyAuthenticator,
  ) {}

  async generate(requestId: string, accessToken: unknown, params: Record<string, unknown>): Promise<GraphAnswer> {
    if (typeof accessToken !== 'string' || accessToken === '') return INVALID_TOKEN();
    const caller = await this.callerOf(accessToken);
    if (!caller) return INVALID_TOKEN();
    if (!caller.access.can('generate'))
      return graphError(403, 200, '(#200) This key may not create codes: it needs the role EDITOR or ADMIN');
    // Not the default page: a key of several pages would be refused there, in words naming a page it never asked for.
    if (caller.pageId === undefined && caller.access.pageIds !== null)
      return graphError(
        403,
        200,
        '(#200) This key is scoped to several pages, so `me` names none: use a key of one page, or its page token',
      );

    if (params.type !== undefined && String(params.type).toLowerCase() !== 'standard') {
      return invalidParameter('param type must be one of {STANDARD}');
    }
    const imageSize = params.image_size === undefined ? undefined : Number(params.image_size);
    if (imageSize !== undefined && !Number.isInteger(imageSize)) return invalidParameter('param image_size must be an integer');
    const data = parsedData(params.data);
    if (data === 'invalid' || (data?.ref !== undefined && typeof data.ref !== 'string')) {
      return invalidParameter('param data must be an object, e.g. {"ref":"billboard-ad"}');
    }
    const context: RequestContext = { requestId, access: caller.access };
    try {
      const code = await this.codes.generate(context, { pageId: caller.pageId, imageSize, ref: data?.ref as string | undefined });
      return { status: 200, body: { uri: this.codes.imageUrl(code) } };
    } catch (error) {
      return this.answerOf(error);
    }
  }

  /** A page token gives that page; an EDITOR or ADMIN key its only page, else the default page. */
  private async callerOf(token: string): Promise<{ access: Access; pageId: string | undefined } | undefined> {
    const pageId = await this.pages.pageOfToken(token);
    if (pageId !== undefined) return { access: Access.pageToken(pageId), pageId };
    const access = await this.authenticateKey(token);
    if (!access) return undefined;
    return { access, pageId: access.pageIds?.length === 1 ? access.pageIds[0] : undefined };
  }

  private answerOf(error: unknown): GraphAnswer {
    if (error instanceof BadUserInputError) {
      return invalidParameter(`param ${GRAPH_PARAMETER[error.field] ?? error.field}: ${error.message}`);
    }
    if (error instanceof ForbiddenError || error instanceof NotFoundError) return graphError(403, 200, `(#200) ${error.message}`);
    if (error instanceof RateLimitedError) return graphError(400, 4, `(#4) Application request limit reached: ${error.message}`);
    if (error instanceof PublicError && error.extensions.code === 'UPSTREAM_UNAVAILABLE') {
      return graphError(503, 2, 'Service temporarily unavailable', 'OAuthException');
    }
    if (error instanceof PublicError) return graphError(500, 1, 'An unknown error occurred', 'OAuthException');
    throw error;
  }
}
