/**
 * Collects the keys asked for during one tick and loads them with one call, so a
 * list of N items resolving a related object costs one query, not N. Nothing is
 * cached beyond the batch: a long-lived subscription never reads stale data.
 */
export class BatchLoader<Key, Value> {
  private pending: { key: Key; resolve: (value: Value | null) => void; reject: (error: unknown) => void }[] = [];

  constructor(
    private readonly loadMany: (keys: Key[]) => Promise<Map<string, Value>>,
    private readonly idOf: (key: Key) => string,
  ) {}

  load(key: Key): Promise<Value | null> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) queueMicrotask(() => void this.flush());
      this.pending.push({ key, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    try {
      const values = await this.loadMany(batch.map((request) => request.key));
      for (const request of batch) request.resolve(values.get(this.idOf(request.key)) ?? null);
    } catch (error) {
      for (const request of batch) request.reject(error);
    }
  }
}
