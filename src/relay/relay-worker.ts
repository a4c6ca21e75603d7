import type { RelayConfig } from '../config';
import type { Logger } from '../logging/logger';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { ClaimedDelivery, RelayOutbox } from './relay-outbox';

/** In-flight deliveries get this long to finish when the process stops; then they are handed back. */
const STOP_GRACE_MS = 2_000;
/** The shortest time between two claims of one process (see wake). */
const MIN_CLAIM_GAP_MS = 10;
/** How often finished rows past their retention are deleted (more often when a retention is shorter). */
const PRUNE_EVERY_MS = 10 * 60_000;

/** Why an attempt failed, short and free of secrets (never the URL, which may hold a token). */
class AttemptFailure extends Error {}

/** Exponential backoff with jitter: base·2^(n-1), capped, drawn in [½, 1] of it so retries spread. */
export function retryDelayMs(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** The origin of a URL for the logs: its path or query may carry a bot's secret. */
function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'invalid URL';
  }
}

function describe(error: unknown): string {
  if (error instanceof AttemptFailure) return error.message;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const detail = cause?.code ?? cause?.message ?? (error as Error).message;
  return `connection failed: ${detail}`;
}

/**
 * Sends the outbox's due deliveries from this process: claims them with a lease (so several
 * instances on one database share the work), at most `concurrency` at a time whatever the
 * number of bots and `concurrencyPerUrl` to one bot (a hanging bot leaves the others their
 * slots), each attempt bounded by `timeoutMs`. Anything but a 2xx (a redirect too: it
 * is not followed) is retried with backoff until `giveUpAfterMs` after the webhook, then given
 * up. The webhook never waits for any of it: it only commits rows and wakes the worker.
 */
export class RelayWorker {
  private readonly inFlight = new Map<string, { controller: AbortController; done: Promise<void>; url: string }>();
  private timer: NodeJS.Timeout | undefined;
  private timerDueAt = 0;
  private lastClaimAt = 0;
  private ticking: Promise<void> | undefined;
  private again = false;
  private running = false;
  private stopping = false;
  private lastPrune = 0;

  constructor(
    private readonly outbox: RelayOutbox,
    private readonly config: RelayConfig,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (this.running || this.stopping) return;
    this.running = true;
    this.wake();
  }

  /**
   * New rows were committed (or a slot freed): look for due deliveries now rather than at the
   * next poll; at most one claim every MIN_CLAIM_GAP_MS, so a flood of webhooks shares claims
   * instead of adding one write per request.
   */
  wake(): void {
    if (!this.running || this.stopping) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    const wait = this.lastClaimAt + MIN_CLAIM_GAP_MS - Date.now();
    if (wait > 0) {
      this.schedule(wait);
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.lastClaimAt = Date.now();
    this.ticking = this.tick().finally(() => {
      this.ticking = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  /**
   * Stops claiming; deliveries in flight get a short grace, then are aborted and handed back
   * untried (due at once for the next process), so a stop loses no row.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearTimeout(this.timer);
    await this.ticking;
    const pending = [...this.inFlight.values()];
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending.map((flight) => flight.done)),
      new Promise((resolve) => {
        grace = setTimeout(resolve, STOP_GRACE_MS);
      }),
    ]);
    clearTimeout(grace);
    for (const flight of this.inFlight.values()) flight.controller.abort();
    await Promise.all([...this.inFlight.values()].map((flight) => flight.done));
  }

  /** Looks again in `delayMs`, unless an earlier look is already planned. */
  private schedule(delayMs: number): void {
    if (this.stopping) return;
    const dueAt = Date.now() + delayMs;
    if (this.timer !== undefined && this.timerDueAt <= dueAt) return;
    clearTimeout(this.timer);
    this.timerDueAt = dueAt;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const free = this.config.concurrency - this.inFlight.size;
    if (free <= 0) return;
    let claimed: ClaimedDelivery[];
    try {
      await this.pruneNowAndThen();
      claimed = await this.outbox.claim({
        limit: free,
        perUrl: this.config.concurrencyPerUrl,
        busyUrls: this.busyUrls(),
        now: Date.now(),
        leaseMs: this.config.leaseMs,
      });
    } catch (error) {
      // The database is away: the rows wait there; try again at the next poll.
      if (!this.stopping) this.logger.warn({ err: error }, 'relay: could not read the outbox');
      this.schedule(this.config.pollMs);
      return;
    }
    for (const delivery of claimed) {
      // Rows of one claim are capped per bot, not counting those already in flight: the excess goes back.
      if (this.inFlightTo(delivery.url) >= this.config.concurrencyPerUrl) void this.handBack(delivery);
      else this.launch(delivery);
    }
    // A full claim means more may be due: the next free slot claims again (launch wakes the
    // worker when a delivery ends); otherwise look again at the next poll.
    this.schedule(this.config.pollMs);
  }

  private inFlightTo(url: string): number {
    let count = 0;
    for (const flight of this.inFlight.values()) if (flight.url === url) count++;
    return count;
  }

  private async handBack(delivery: ClaimedDelivery): Promise<void> {
    try {
      await this.outbox.release(delivery, Date.now());
    } catch (error) {
      // Its lease runs out instead.
      this.logger.warn({ err: error, deliveryId: delivery.id }, 'relay: could not hand a delivery back');
    }
  }

  /** Bots with as many deliveries in flight from here as RELAY_CONCURRENCY_PER_URL allows. */
  private busyUrls(): string[] {
    const perUrl = new Map<string, number>();
    for (const { url } of this.inFlight.values()) perUrl.set(url, (perUrl.get(url) ?? 0) + 1);
    return [...perUrl].filter(([, count]) => count >= this.config.concurrencyPerUrl).map(([url]) => url);
  }

  private async pruneNowAndThen(): Promise<void> {
    const now = Date.now();
    const { keepDeliveredMs, keepGivenUpMs } = this.config;
    // A short retention is honoured too (at most one prune per poll).
    if (now - this.lastPrune < Math.min(PRUNE_EVERY_MS, keepDeliveredMs, keepGivenUpMs)) return;
    this.lastPrune = now;
    await this.outbox.prune({ deliveredBefore: now - keepDeliveredMs, givenUpBefore: now - keepGivenUpMs });
  }

  private launch(delivery: ClaimedDelivery): void {
    const controller = new AbortController();
    const done = this.deliver(delivery, controller)
      .catch((error: unknown) => {
        // Settling failed (the database is away): the lease runs out and the row is retried.
        this.logger.warn({ err: error, deliveryId: delivery.id }, 'relay: could not record a delivery attempt');
      })
      .finally(() => {
        this.inFlight.delete(delivery.id);
        this.wake();
      });
    this.inFlight.set(delivery.id, { controller, done, url: delivery.url });
  }

  private async deliver(delivery: ClaimedDelivery, stop: AbortController): Promise<void> {
    let failure: string | undefined;
    try {
      await this.attempt(delivery, stop.signal);
    } catch (error) {
      if (stop.signal.aborted) {
        await this.outbox.release(delivery, Date.now());
        return;
      }
      failure = describe(error);
    }
    const now = Date.now();
    const target = originOf(delivery.url);
    if (failure === undefined) {
      if (await this.outbox.delivered(delivery, now)) this.metrics.relayDelivered();
      return;
    }
    this.metrics.relayAttemptFailed();
    const attempts = delivery.attempts + 1;
    const deadline = delivery.createdAt + this.config.giveUpAfterMs;
    if (now >= deadline) {
      if (await this.outbox.gaveUp(delivery, failure, now)) {
        this.metrics.relayGivenUp();
        this.logger.error({ deliveryId: delivery.id, target, attempts, reason: failure }, 'relay: delivery given up');
      }
      return;
    }
    // The last retry falls on the deadline itself, so a bot back in time still gets it.
    const retryAt = Math.min(now + retryDelayMs(attempts, this.config.retryBaseMs, this.config.retryMaxMs), deadline);
    await this.outbox.failed(delivery, failure, now, retryAt);
    this.logger.warn({ deliveryId: delivery.id, target, attempts, reason: failure, retryInMs: retryAt - now }, 'relay: delivery failed');
  }

  /** One POST; resolves on a 2xx, throws anything else. */
  private async attempt(delivery: ClaimedDelivery, stop: AbortSignal): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': delivery.contentType,
      'x-hub-signature-256': delivery.signature256,
      'x-relay-delivery-id': delivery.id,
      'user-agent': 'messenger-code-gateway-relay',
    };
    if (delivery.signature1 !== undefined) headers['x-hub-signature'] = delivery.signature1;
    const timeout = AbortSignal.timeout(this.config.timeoutMs);
    let response: Response;
    try {
      response = await fetch(delivery.url, {
        method: 'POST',
        headers,
        body: new Uint8Array(delivery.body),
        // A redirect is a failure, not followed: a webhook body must not be replayed to wherever a 3xx points.
        redirect: 'manual',
        signal: AbortSignal.any([stop, timeout]),
      });
    } catch (error) {
      if (timeout.aborted && !stop.aborted) throw new AttemptFailure(`no answer within ${this.config.timeoutMs} ms`);
      throw error;
    }
    // The bot's answer body is not needed; dropping it frees the connection.
    await response.body?.cancel().catch(() => undefined);
    if (response.status >= 200 && response.status < 300) return;
    if (response.status >= 300 && response.status < 400) throw new AttemptFailure(`HTTP ${response.status} (redirects are not followed)`);
    throw new AttemptFailure(`HTTP ${response.status}`);
  }
}
