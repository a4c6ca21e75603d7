import type { GatewayProcess } from './gateway-process';

/** Runs `work` while sampling the gateway's resident memory: its value before, and its peak meanwhile (KiB). */
export async function withPeakMemory<T>(
  gateway: GatewayProcess,
  work: () => Promise<T>,
): Promise<T & { rssBeforeKiB: number; peakRssKiB: number }> {
  const rssBeforeKiB = gateway.rssKiB();
  let peakRssKiB = rssBeforeKiB;
  const sampler = setInterval(() => {
    peakRssKiB = Math.max(peakRssKiB, gateway.rssKiB());
  }, 20);
  try {
    const result = await work();
    return { ...result, rssBeforeKiB, peakRssKiB };
  } finally {
    clearInterval(sampler);
  }
}
