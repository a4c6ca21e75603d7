import type { GatewayConfig } from '../config';
import { ApiKeyService } from '../auth/api-key.service';
import { GenerateRateLimit } from '../auth/generate-rate-limit';
import { CodeService } from '../codes/code.service';
import type { CodeImageProvider } from '../codes/providers/code-image-provider';
import { FacebookCodeImageProvider } from '../codes/providers/facebook.provider';
import { LocalCodeImageProvider } from '../codes/providers/local.provider';
import { MessengerCodeApi } from '../codes/messenger-code-api';
import { RefCounterStore } from '../codes/ref-counter.store';
import type { Database } from '../db/database';
import { ImageStore } from '../images/image.store';
import type { Logger } from '../logging/logger';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { PageService } from '../pages/page.service';
import { TokenCipher } from '../pages/token-cipher';
import { PsidHasher } from '../scans/psid-hash';
import { ScanFeed } from '../scans/scan-feed';
import { ScanService } from '../scans/scan.service';
import { ScanStreamStore } from '../scans/scan-stream.store';
import { ScanWriter } from '../scans/scan.store';
import { OrphanRefService } from '../stats/orphan-refs';
import { ScanStatsService } from '../stats/scan-stats.service';
import { ScanRollups } from '../stats/scan-rollups';
import { PrintSheetService } from '../print/print-sheet.service';
import { RelayService } from '../relay/relay.service';
import { VisitCounter } from '../tracking/visit-counter';
import { openDatabase } from './data-source';

/** Largest image a Graph API download may return. */
const MAX_UPSTREAM_IMAGE_BYTES = 5 * 1024 * 1024;

/** Everything the routes and resolvers call, built once per gateway. */
export interface Services {
  db: Database;
  pages: PageService;
  codes: CodeService;
  scans: ScanService;
  feed: ScanFeed;
  images: ImageStore;
  apiKeys: ApiKeyService;
  printSheets: PrintSheetService;
  /** POST /<version>/me/messenger_codes */
  messengerCodes: MessengerCodeApi;
  orphanRefs: OrphanRefService;
  scanStats: ScanStatsService;
  visits: VisitCounter;
  metrics: GatewayMetrics;
  /** the bot relay; its worker is started and stopped by the gateway */
  relay: RelayService;
  /** Releases what the services hold (Redis connections, the database). */
  close(): Promise<void>;
}

function createProvider(config: GatewayConfig, metrics: GatewayMetrics): CodeImageProvider {
  if (config.codeProvider === 'local') return new LocalCodeImageProvider();
  return new FacebookCodeImageProvider({
    graphApiUrl: config.graphApiUrl,
    graphApiVersion: config.graphApiVersion,
    allowedImageHosts: config.codeImageHosts,
    requestTimeoutMs: config.graphApiTimeoutMs,
    maxAttempts: config.graphApiMaxAttempts,
    retryBaseDelayMs: 200,
    maxImageBytes: MAX_UPSTREAM_IMAGE_BYTES,
    ...(config.appSecret !== undefined ? { appSecret: config.appSecret } : {}),
    onGraphCall: (outcome) => metrics.graphApiCall(outcome),
  });
}

/**
 * Opens the database (running migrations) and wires the services. `publicUrl` is read
 * lazily: without PUBLIC_URL it is known only once the server has bound its port.
 */
export async function buildServices(config: GatewayConfig, logger: Logger, publicUrl: () => string): Promise<Services> {
  const db = await openDatabase(config.database);
  // Before anything else holds resources: a failure here only has the database to close.
  const pages = new PageService(db, {
    defaultPageId: config.defaultPageId,
    defaultPageAccessToken: config.pageAccessToken,
    cipher: new TokenCipher(config.encryptionKey, config.previousEncryptionKeys),
    logger: logger.child({ component: 'pages' }),
  });
  try {
    await pages.init();
  } catch (error) {
    await db.close();
    throw error;
  }
  const metrics = new GatewayMetrics();
  const redis = config.redisUrl === undefined ? undefined : { url: config.redisUrl, prefix: config.redisPrefix };
  const rollups = new ScanRollups(db, { logger: logger.child({ component: 'rollups' }) });
  const writer = new ScanWriter(db, [rollups]);
  const feed = new ScanFeed({
    maxBacklog: config.subscriberMaxBacklog,
    stream: new ScanStreamStore(db),
    unpublishedFrom: () => writer.unpublishedFrom(),
    redis,
    secrets: { appSecret: config.appSecret, psidHashKey: config.psidHashKey },
    logger: logger.child({ component: 'scan-feed' }),
    onSubscriberDropped: () => metrics.subscriberDropped(),
    onMessageRejected: (reason) => metrics.feedMessageRejected(reason),
  });
  metrics.observeSubscribers(() => feed.subscriberCount);
  try {
    await feed.start();
  } catch (error) {
    await feed.close();
    await db.close();
    throw error;
  }
  const images = new ImageStore(db, publicUrl);
  const rateLimit = new GenerateRateLimit({
    codesPerMinute: config.generateRateLimit,
    redis,
    logger: logger.child({ component: 'rate-limit' }),
  });
  const codes = new CodeService(db, pages, createProvider(config, metrics), images, new RefCounterStore(db), rateLimit, publicUrl);
  const visits = new VisitCounter(db, logger.child({ component: 'visits' }));
  const apiKeys = new ApiKeyService(db, pages, { adminApiKey: config.adminApiKey, logger: logger.child({ component: 'api-keys' }) });
  const scans = new ScanService(db, feed, new PsidHasher(config), writer, codes, metrics);
  return {
    db,
    pages,
    codes,
    scans,
    feed,
    images,
    orphanRefs: new OrphanRefService(db),
    scanStats: new ScanStatsService(db, codes),
    visits,
    apiKeys,
    printSheets: new PrintSheetService(db, codes, rateLimit, publicUrl),
    messengerCodes: new MessengerCodeApi(codes, pages, (key) => apiKeys.accessOfPresentedKey(key)),
    metrics,
    relay: new RelayService(db, pages, {
      config: config.relay,
      appSecret: config.appSecret,
      metrics,
      logger: logger.child({ component: 'relay' }),
    }),
    close: async () => {
      await feed.close();
      await rateLimit.close();
      await visits.close();
      await rollups.settled();
      await db.close();
    },
  };
}
