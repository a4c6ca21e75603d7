/**
 * A least-recently-used map keyed by text (a GraphQL document), bounded both in entries and
 * in the characters of its keys: a few huge texts cannot hold more than `maxChars`, and a
 * text longer than that is not kept at all.
 */
export class TextKeyedCache<V> {
  private readonly entries = new Map<string, V>();
  private keyChars = 0;

  constructor(private readonly limits: { maxEntries: number; maxChars: number }) {}

  /** Entries kept. */
  get size(): number {
    return this.entries.size;
  }

  /** Characters of the keys kept (what `maxChars` bounds). */
  get chars(): number {
    return this.keyChars;
  }

  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      // Most recently used last.
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    if (this.entries.delete(key)) this.keyChars -= key.length;
    if (key.length > this.limits.maxChars) return;
    this.entries.set(key, value);
    this.keyChars += key.length;
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.limits.maxEntries && this.keyChars <= this.limits.maxChars) break;
      this.entries.delete(oldest);
      this.keyChars -= oldest.length;
    }
  }
}
