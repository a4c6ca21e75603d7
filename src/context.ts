/** What every service call knows about the request it serves. */
export interface RequestContext {
  /** Correlates log lines of one request; never contains personal data. */
  requestId: string;
}
