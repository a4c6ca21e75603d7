import type { RequestContext } from '../context';
import { NotFoundError } from '../errors';

export interface KnownPage {
  id: string;
  accessToken: string | undefined;
}

/**
 * The pages codes may be generated for. Today that is the configured default page;
 * registering more pages (with their own tokens) plugs in here.
 */
export class PageService {
  private readonly pages: Map<string, KnownPage>;

  constructor(
    readonly defaultPageId: string,
    defaultPageAccessToken: string | undefined,
  ) {
    this.pages = new Map([[defaultPageId, { id: defaultPageId, accessToken: defaultPageAccessToken }]]);
  }

  /** The page a request names, or the default page; NOT_FOUND (field `field`) when unknown. */
  require(_context: RequestContext, pageId: string | null | undefined, field = 'pageId'): KnownPage {
    const id = pageId ?? this.defaultPageId;
    const page = this.pages.get(id);
    if (!page) throw new NotFoundError(field, `Unknown page "${id}": codes can only be generated for known pages.`);
    return page;
  }
}
