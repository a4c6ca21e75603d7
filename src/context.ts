import type { Access } from './access';

/** What every service call knows about the request it serves. */
export interface RequestContext {
  /** Correlates log lines of one request; never contains personal data. */
  requestId: string;
  /** Who is asking: the role and the pages every read and write of the request is held to. */
  access: Access;
}
