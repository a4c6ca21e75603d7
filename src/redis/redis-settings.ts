/** Where a capability reaches Redis, and what its channel and keys there begin with. */
export interface RedisSettings {
  /** REDIS_URL */
  url: string;
  /** REDIS_PREFIX: the same on every instance of a deployment, another for each deployment sharing the server */
  prefix: string;
}
