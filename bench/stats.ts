/** Small statistics helpers shared by the load generator and the orchestrator. */

export interface LatencySummary {
  /** number of samples */
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Nearest-rank percentile of ascending `sorted` (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function summarize(samples: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1],
  };
}

/** A growable list of numbers without boxing every sample. */
export class Samples {
  private buffer = new Float64Array(1024);
  private size = 0;

  push(value: number): void {
    if (this.size === this.buffer.length) {
      const bigger = new Float64Array(this.buffer.length * 2);
      bigger.set(this.buffer);
      this.buffer = bigger;
    }
    this.buffer[this.size] = value;
    this.size += 1;
  }

  get length(): number {
    return this.size;
  }

  values(): Float64Array {
    return this.buffer.subarray(0, this.size);
  }
}

/** Measures the CPU this process uses from now on, in cores (1 = one core busy all along). */
export function cpuMeter(): () => number {
  const usage = process.cpuUsage();
  const started = process.hrtime.bigint();
  return () => {
    const { user, system } = process.cpuUsage(usage);
    const elapsedMicros = Number(process.hrtime.bigint() - started) / 1000;
    return elapsedMicros > 0 ? (user + system) / elapsedMicros : 0;
  };
}
