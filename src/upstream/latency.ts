/**
 * A fixed-bucket latency histogram for per-backend p50/p99 without keeping samples: buckets grow
 * by 25% from 0.1 ms to about 10 min, so a quantile is off by at most a quarter of its value.
 * Recording is one Math.log and one increment; nothing is allocated after construction.
 */
const firstBoundMs = 0.1;
const growth = 1.25;
const logGrowth = Math.log(growth);
const bucketCount = 72;

function bucketOf(ms: number): number {
  return ms <= firstBoundMs ? 0 : Math.min(bucketCount - 1, Math.ceil(Math.log(ms / firstBoundMs) / logGrowth));
}

/** Upper bound (ms) of the bucket holding quantile `q` over the summed counts; 0 with none. */
function quantileOf(q: number, total: number, countAt: (i: number) => number): number {
  if (total === 0) return 0;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let i = 0; i < bucketCount; i++) {
    seen += countAt(i);
    if (seen >= rank) return firstBoundMs * growth ** i;
  }
  return firstBoundMs * growth ** (bucketCount - 1);
}

export class LatencyHistogram {
  private readonly counts = new Float64Array(bucketCount);
  count = 0;
  sumMs = 0;

  record(ms: number): void {
    const index = bucketOf(ms);
    this.counts[index] = (this.counts[index] as number) + 1;
    this.count++;
    this.sumMs += ms;
  }

  /** Upper bound (ms) of the bucket holding quantile `q` (0..1); 0 with no samples. */
  quantile(q: number): number {
    return quantileOf(q, this.count, (i) => this.counts[i] as number);
  }
}

/**
 * Latency over the last one to two windows (default 30 s each): two histograms, the older
 * dropped when a window ends. Operators see what a backend does now, not since start-up.
 * Rotation happens on record or read (no timer).
 */
export class RecentLatency {
  private current = new Float64Array(bucketCount);
  private previous = new Float64Array(bucketCount);
  private currentCount = 0;
  private previousCount = 0;
  private windowStartMs: number;
  private readonly windowMs: number;

  constructor(windowMs = 30_000, nowMs = performance.now()) {
    this.windowMs = windowMs;
    this.windowStartMs = nowMs;
  }

  private rotate(nowMs: number): void {
    const elapsed = nowMs - this.windowStartMs;
    if (elapsed < this.windowMs) return;
    if (elapsed >= 2 * this.windowMs) {
      // Idle for more than a window: both are stale.
      this.previous.fill(0);
      this.previousCount = 0;
      this.current.fill(0);
      this.currentCount = 0;
      this.windowStartMs = nowMs;
      return;
    }
    const old = this.previous;
    this.previous = this.current;
    this.previousCount = this.currentCount;
    old.fill(0);
    this.current = old;
    this.currentCount = 0;
    this.windowStartMs += this.windowMs;
  }

  record(ms: number, nowMs = performance.now()): void {
    this.rotate(nowMs);
    const index = bucketOf(ms);
    this.current[index] = (this.current[index] as number) + 1;
    this.currentCount++;
  }

  /** Samples in the window now. */
  count(nowMs = performance.now()): number {
    this.rotate(nowMs);
    return this.currentCount + this.previousCount;
  }

  quantile(q: number, nowMs = performance.now()): number {
    this.rotate(nowMs);
    return quantileOf(q, this.currentCount + this.previousCount, (i) => (this.current[i] as number) + (this.previous[i] as number));
  }
}
