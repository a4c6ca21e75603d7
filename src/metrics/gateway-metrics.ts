import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Why a message on the Redis scan channel was dropped instead of delivered. */
export type FeedRejectionReason = 'unauthenticated' | 'malformed' | 'too_large';
const FEED_REJECTION_REASONS: readonly FeedRejectionReason[] = ['unauthenticated', 'malformed', 'too_large'];

/**
 * The gateway's Prometheus metrics, in a registry of its own (several gateways may run
 * in one process, in tests). Services record through the typed methods; `/metrics`
 * renders the registry.
 */
export class GatewayMetrics {
  readonly registry = new Registry();

  private readonly webhookRequests = new Counter({
    name: 'gateway_webhook_requests_total',
    help: 'POST /webhook requests by HTTP status.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  private readonly scans = new Counter({
    name: 'gateway_scans_total',
    help: 'Scans received by the webhook: stored (new) or duplicate (a redelivery already stored).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  private readonly ingestSeconds = new Histogram({
    name: 'gateway_ingest_duration_seconds',
    help: 'Time from a webhook request being verified to its scans being committed.',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  private readonly subscribersDropped = new Counter({
    name: 'gateway_subscribers_dropped_total',
    help: 'Subscribers disconnected because their backlog exceeded SUBSCRIBER_MAX_BACKLOG.',
    registers: [this.registry],
  });

  private readonly webhookItemsRejected = new Counter({
    name: 'gateway_webhook_items_rejected_total',
    help: 'Scans in signed webhooks that could not be stored, by reason (the request is still answered 200).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly graphApiCalls = new Counter({
    name: 'gateway_graph_api_calls_total',
    help: 'Graph API calls (and image downloads) by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly feedMessagesRejected = new Counter({
    name: 'gateway_feed_messages_rejected_total',
    help: 'Messages on the Redis scan channel dropped undelivered: unauthenticated (missing or bad MAC), malformed, or too_large.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly relayDeliveries = new Counter({
    name: 'gateway_relay_delivered_total',
    help: 'Relayed webhook deliveries a bot accepted (a 2xx), by this instance.',
    registers: [this.registry],
  });

  private readonly relayFailedAttempts = new Counter({
    name: 'gateway_relay_failed_attempts_total',
    help: 'Relay delivery attempts that failed (timeout, connection error, redirect, non-2xx) and were retried or given up, by this instance.',
    registers: [this.registry],
  });

  private readonly relayGaveUp = new Counter({
    name: 'gateway_relay_given_up_total',
    help: 'Relay deliveries given up after RELAY_GIVE_UP_AFTER_MS of failures (kept in the outbox), by this instance.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Every reason is exported from the start (at 0), so a rate or an alert has a series to read.
    for (const reason of FEED_REJECTION_REASONS) this.feedMessagesRejected.inc({ reason }, 0);
  }

  /** The gauge of current subscribers reads the feed when scraped. */
  observeSubscribers(subscriberCount: () => number): void {
    new Gauge({
      name: 'gateway_subscribers',
      help: 'Active `scanned` subscriptions on this instance.',
      registers: [this.registry],
      collect() {
        this.set(subscriberCount());
      },
    });
  }

  /**
   * The gauge of relay deliveries waiting (every instance's: they share the outbox), read
   * from the database when scraped. A failed read keeps the last value: /metrics answers
   * while the database is away (readyz says that).
   */
  observeRelayPending(pendingCount: () => Promise<number>): void {
    new Gauge({
      name: 'gateway_relay_pending',
      help: 'Relay deliveries not yet accepted by their bot and not given up, all instances together.',
      registers: [this.registry],
      async collect() {
        try {
          this.set(await pendingCount());
        } catch {
          // the last value stays (see above)
        }
      },
    });
  }

  relayDelivered(): void {
    this.relayDeliveries.inc();
  }

  relayAttemptFailed(): void {
    this.relayFailedAttempts.inc();
  }

  relayGivenUp(): void {
    this.relayGaveUp.inc();
  }

  webhookAnswered(status: number): void {
    this.webhookRequests.inc({ status: String(status) });
  }

  scansIngested(result: { stored: number; duplicates: number }, seconds: number): void {
    if (result.stored > 0) this.scans.inc({ result: 'stored' }, result.stored);
    if (result.duplicates > 0) this.scans.inc({ result: 'duplicate' }, result.duplicates);
    this.ingestSeconds.observe(seconds);
  }

  subscriberDropped(): void {
    this.subscribersDropped.inc();
  }

  feedMessageRejected(reason: FeedRejectionReason): void {
    this.feedMessagesRejected.inc({ reason });
  }

  webhookItemsRejectedBy(reasons: Partial<Record<string, number>>): void {
    for (const [reason, count] of Object.entries(reasons)) if (count) this.webhookItemsRejected.inc({ reason }, count);
  }

  /** success, refused (a Graph API error that retrying will not fix) or transient (retried) */
  graphApiCall(outcome: string): void {
    this.graphApiCalls.inc({ outcome });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
