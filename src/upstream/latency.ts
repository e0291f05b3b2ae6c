/**
 * A fixed-bucket latency histogram for per-backend p50/p99 without keeping samples: buckets grow
 * by 25% from 0.1 ms to about 10 min, so a quantile is off by at most a quarter of its value.
 * Recording is one Math.log and one increment; nothing is allocated after construction.
 */
const firstBoundMs = 0.1;
const growth = 1.25;
const logGrowth = Math.log(growth);
const bucketCount = 72;

export class LatencyHistogram {
  private readonly counts = new Float64Array(bucketCount);
  count = 0;
  sumMs = 0;

  record(ms: number): void {
    const index = ms <= firstBoundMs ? 0 : Math.min(bucketCount - 1, Math.ceil(Math.log(ms / firstBoundMs) / logGrowth));
    this.counts[index] = (this.counts[index] as number) + 1;
    this.count++;
    this.sumMs += ms;
  }

  /** Upper bound (ms) of the bucket holding quantile `q` (0..1); 0 with no samples. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < bucketCount; i++) {
      seen += this.counts[i] as number;
      if (seen >= rank) return firstBoundMs * growth ** i;
    }
    return firstBoundMs * growth ** (bucketCount - 1);
  }
}
