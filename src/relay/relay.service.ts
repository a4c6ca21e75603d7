import { randomUUID } from 'node:crypto';
import type { RelayConfig } from '../config';
import type { RequestContext } from '../context';
import type { Database } from '../db/database';
import type { Logger } from '../logging/logger';
import type { GatewayMetrics } from '../metrics/gateway-metrics';
import type { PageService } from '../pages/page.service';
import type { AlongsideScans } from '../scans/scan.store';
import { deliveriesOf, type RelayRequest } from './relay-body';
import { RelayOutbox } from './relay-outbox';
import { RelayWorker } from './relay-worker';
import type { RelayTarget } from './relay.types';

export interface RelayServiceOptions {
  config: RelayConfig;
  appSecret: string | undefined;
  metrics: GatewayMetrics;
  logger: Logger;
}

/**
 * The bot relay: every verified webhook request goes on to the bot of its pages
 * (Page.relayUrl, else RELAY_URL), so a bot keeps working behind the gateway. The webhook
 * commits the deliveries with its scans (prepare); the worker sends them afterwards.
 */
export class RelayService {
  private readonly outbox: RelayOutbox;
  private readonly worker: RelayWorker;
  private readonly config: RelayConfig;
  private readonly appSecret: string | undefined;
  private readonly logger: Logger;

  constructor(
    db: Database,
    private readonly pages: PageService,
    options: RelayServiceOptions,
  ) {
    this.config = options.config;
    this.appSecret = options.appSecret;
    this.logger = options.logger;
    this.outbox = new RelayOutbox(db);
    this.worker = new RelayWorker(this.outbox, options.config, options.metrics, options.logger);
    options.metrics.observeRelayPending(() => this.outbox.pendingCount());
  }

  /**
   * The deliveries of a verified request, as work for its ingest transaction; undefined when
   * no entry has a bot. Each delivery gets its X-Relay-Delivery-Id here, once.
   */
  async prepare(request: RelayRequest): Promise<AlongsideScans | undefined> {
    const pageIds = request.entryPageIds.filter((id): id is string => id !== undefined);
    // The common case without any relay configured stays a memory lookup.
    const urls = pageIds.length > 0 ? await this.pages.relayUrlsOf(pageIds) : new Map<string, string | null>();
    const urlOf = (pageId: string | undefined) => (pageId === undefined ? undefined : urls.get(pageId)) ?? this.config.url;
    if (this.appSecret === undefined) return undefined;
    let deliveries;
    try {
      deliveries = deliveriesOf(request, urlOf, this.appSecret);
    } catch (error) {
      // Never expected (the body parsed as JSON); the scans are still stored, and the log says what was not relayed.
      this.logger.error({ err: error }, 'relay: a webhook request could not be split between its bots; it is not relayed');
      return undefined;
    }
    if (deliveries.length === 0) return undefined;
    const rows = deliveries.map((delivery) => ({ id: randomUUID(), delivery }));
    return (sql) => this.outbox.insert(sql, rows, Date.now());
  }

  /** Deliveries were just committed: send them now rather than at the next poll. */
  wake(): void {
    this.worker.wake();
  }

  start(): void {
    this.worker.start();
  }

  /** Stops sending; nothing is lost (see RelayWorker.stop). */
  stop(): Promise<void> {
    return this.worker.stop();
  }

  /** Every bot URL known: configured ones (even before any delivery) and those with rows, by URL. */
  async targets(_context: RequestContext): Promise<RelayTarget[]> {
    const counted = await this.outbox.targets();
    const configured = [...(this.config.url === undefined ? [] : [this.config.url]), ...(await this.pages.relayUrlsInUse())];
    const byUrl = new Map(counted.map((target) => [target.url, target]));
    for (const url of configured) {
      if (!byUrl.has(url)) byUrl.set(url, { url, pending: 0, delivered: 0, givenUp: 0, oldestPendingAt: null, lastError: null });
    }
    return [...byUrl.values()]
      .sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0))
      .map((target) => ({
        ...target,
        oldestPendingAt: target.oldestPendingAt === null ? null : new Date(target.oldestPendingAt),
      }));
  }
}
