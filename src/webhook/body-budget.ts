/**
 * Bytes of webhook bodies held in memory at once, across all requests. A signature can
 * only be checked on a whole body, so unsigned bodies must be received first: this
 * bounds what senders can make the gateway hold meanwhile (slow or not).
 */
export class BodyBudget {
  private held = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.held;
  }

  /** Takes `bytes` if they fit under the limit; false (nothing taken) otherwise. */
  tryTake(bytes: number): boolean {
    if (this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }
}
