import type Redis from 'ioredis';

/** How long a stop waits for Redis to acknowledge QUIT before dropping the connection. */
const REDIS_QUIT_TIMEOUT_MS = 1000;

/**
 * Closes a client, bounded whatever Redis is doing: a connected client is asked to QUIT
 * (so pending commands go out) for at most REDIS_QUIT_TIMEOUT_MS; one that is not
 * connected, or does not answer in time, is dropped at once.
 */
export async function closeRedis(client: Redis): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, REDIS_QUIT_TIMEOUT_MS);
  });
  await Promise.race([
    client.quit().then(
      () => undefined,
      () => undefined,
    ),
    timedOut,
  ]);
  clearTimeout(timer);
  client.disconnect();
}
