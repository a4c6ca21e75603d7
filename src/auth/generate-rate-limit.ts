import Redis from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Access } from '../access';
import { RateLimitedError } from '../errors';
import type { Logger } from '../logging/logger';
import { closeRedis } from '../redis/close-redis';
import type { RedisSettings } from '../redis/redis-settings';

const WINDOW_SECONDS = 60;
/** The keys after the deployment's REDIS_PREFIX. */
const REDIS_KEY_NAME = 'generate-rate';

export interface GenerateRateLimitOptions {
  /** GENERATE_RATE_LIMIT: codes a minute per key */
  codesPerMinute: number;
  /** with Redis, every instance counts against the same budget, kept under `<prefix>generate-rate` */
  redis: RedisSettings | undefined;
  logger: Logger;
}

/** Whose budget a request spends: each stored key its own; ADMIN_API_KEY and an open gateway one each. */
function budgetOf(access: Access): string | undefined {
  switch (access.principal.kind) {
    case 'api-key':
      return `key:${access.principal.apiKeyId}`;
    case 'page-token':
      return `page:${access.principal.pageId}`;
    case 'admin-api-key':
      return 'admin-api-key';
    case 'open':
      return 'open';
    case 'internal':
    case 'capability-url':
      return undefined;
  }
}

/**
 * GENERATE_RATE_LIMIT: the codes a key may generate per minute (fixed windows), through
 * rate-limiter-flexible. With Redis the budget is shared by every instance; while Redis
 * is unreachable each instance falls back to a budget of its own (the insurance limiter),
 * so generating goes on rather than failing.
 */
export class GenerateRateLimit {
  private readonly limiter: RateLimiterAbstract;
  private readonly redis: Redis | undefined;
  /** Settles once the first connection to Redis is up or has failed (ioredis's connectTimeout bounds it). */
  private readonly firstConnection: Promise<void> | undefined;

  constructor(private readonly options: GenerateRateLimitOptions) {
    const memory = new RateLimiterMemory({ points: options.codesPerMinute, duration: WINDOW_SECONDS });
    if (options.redis === undefined) {
      this.limiter = memory;
      return;
    }
    // As rate-limiter-flexible advises: no offline queue, so an outage fails fast to the insurance.
    this.redis = new Redis(options.redis.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(attempt * 200, 2000),
    });
    let down = false;
    this.redis.on('error', (error: Error) => {
      if (down) return;
      down = true;
      options.logger.warn({ error: error.message }, 'redis unreachable: the generate rate limit is counted per instance until it is back');
    });
    this.redis.on('ready', () => {
      down = false;
    });
    // Until then a call would not be "not ready because Redis is down" but "not connected yet":
    // counted by the insurance alone, it would never reach the budget the other instances share.
    const redis = this.redis;
    this.firstConnection = new Promise<void>((resolve) => {
      const settle = () => {
        for (const event of ['ready', 'error', 'end'] as const) redis.off(event, settle);
        resolve();
      };
      for (const event of ['ready', 'error', 'end'] as const) redis.once(event, settle);
    });
    this.limiter = new RateLimiterRedis({
      storeClient: this.redis,
      keyPrefix: `${options.redis.prefix}${REDIS_KEY_NAME}`,
      points: options.codesPerMinute,
      duration: WINDOW_SECONDS,
      rejectIfRedisNotReady: true,
      insuranceLimiter: memory,
    });
  }

  /**
   * Runs `work` if `codes` more fit in the key's budget, else RATE_LIMITED (with
   * retryAfter) before anything is done. A call that fails gives its codes back: it
   * stored nothing.
   */
  async spend<T>(access: Access, codes: number, work: () => Promise<T>): Promise<T> {
    const budget = budgetOf(access);
    if (budget === undefined) return work();
    const limit = this.options.codesPerMinute;
    if (codes > limit) {
      throw new RateLimitedError(
        `This call generates ${codes} codes; GENERATE_RATE_LIMIT allows ${limit} a minute per key.`,
        WINDOW_SECONDS,
      );
    }
    if (this.firstConnection) await this.firstConnection;
    try {
      await this.limiter.consume(budget, codes);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      // A refused call must not use up what is left of the window.
      await this.limiter.reward(budget, codes).catch(() => undefined);
      const retryAfter = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
      throw new RateLimitedError(
        `Rate limit reached: at most ${limit} codes a minute per key (GENERATE_RATE_LIMIT). Retry in ${retryAfter} s.`,
        retryAfter,
      );
    }
    try {
      return await work();
    } catch (error) {
      await this.limiter.reward(budget, codes).catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.redis) await closeRedis(this.redis);
  }
}
