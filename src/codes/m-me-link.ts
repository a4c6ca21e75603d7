/**
 * The link a LOCAL code opens. The ref is percent-encoded like encodeURIComponent,
 * so a `+` arrives as `+` and not as a space.
 */
export function mMeLink(pageId: string, ref: string | null): string {
  const base = `https://m.me/${encodeURIComponent(pageId)}`;
  return ref === null ? base : `${base}?ref=${encodeURIComponent(ref)}`;
}
