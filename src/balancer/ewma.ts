import type { Clock } from '../clock.js';
import type { Backend } from '../upstream/backend.js';
import { randomEligible, RandomIndex } from './p2c.js';
import type { SlowStart } from './slow-start.js';
import type { Balancer, BalancerOptions, PickContext } from './types.js';

/** Latency recorded for a failed attempt, at least: failures must look slow, not fast. */
const failurePenaltyMs = 1000;
/** Costs below this count as this, so in-flight counts still separate unmeasured backends. */
const costFloorMs = 1;

/**
 * Peak-EWMA (Finagle, Linkerd): each backend's cost is an exponentially weighted moving average
 * of its latency that jumps straight up to any slower sample (the peak) and decays towards
 * newer samples with time constant `ewmaDecayMs`. Between samples it decays towards zero, so a
 * backend that was slow once is probed again and recovers. A pick draws two eligible backends
 * at random (P2C) and takes the lower cost x (in-flight + 1) / weight.
 */
export class Ewma implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly clock: Clock;
  private readonly random: RandomIndex;
  private readonly slowStart: SlowStart;
  private readonly decayMs: number;
  private readonly position: Map<Backend, number>;
  private readonly cost: Float64Array;
  private readonly stamp: Float64Array;
  /**
   * The clock as of the last attempt end: picks decay costs to this time instead of reading the
   * clock, since a clock read boxes a double (an allocation) and time only matters as traffic flows.
   */
  private readonly lastNowMs = new Float64Array(1);

  constructor(backends: readonly Backend[], options: BalancerOptions) {
    this.backends = backends;
    this.clock = options.clock;
    this.random = new RandomIndex(options.random);
    this.slowStart = options.slowStart;
    this.decayMs = options.ewmaDecayMs;
    this.position = new Map(backends.map((backend, i) => [backend, i]));
    this.cost = new Float64Array(backends.length);
    this.stamp = new Float64Array(backends.length).fill(options.clock.now());
    this.lastNowMs[0] = this.stamp[0] ?? 0;
  }

  pick(ctx: PickContext): Backend | undefined {
    const first = randomEligible(this.backends, ctx, this.random, undefined);
    if (first === undefined) return undefined;
    const second = randomEligible(this.backends, ctx, this.random, first);
    if (second === undefined) return first;
    const now = this.lastNowMs[0] as number;
    return this.score(second, now) < this.score(first, now) ? second : first;
  }

  onAttemptEnd(backend: Backend, failed: boolean, latencyMs: number): void {
    const i = this.position.get(backend);
    if (i === undefined) return;
    const sample = failed ? Math.max(latencyMs, failurePenaltyMs) : latencyMs;
    const now = this.clock.now();
    this.lastNowMs[0] = now;
    const decayed = this.decayed(i, now);
    const keep = Math.exp(-Math.max(0, now - (this.stamp[i] as number)) / this.decayMs);
    this.cost[i] = sample > decayed ? sample : (this.cost[i] as number) * keep + sample * (1 - keep);
    this.stamp[i] = now;
  }

  /** The cost a pick would see now, for observers and tests. */
  costMs(backend: Backend): number {
    const i = this.position.get(backend);
    return i === undefined ? 0 : this.decayed(i, this.clock.now());
  }

  private decayed(i: number, now: number): number {
    return (this.cost[i] as number) * Math.exp(-Math.max(0, now - (this.stamp[i] as number)) / this.decayMs);
  }

  private score(backend: Backend, now: number): number {
    const i = this.position.get(backend) as number;
    return (Math.max(this.decayed(i, now), costFloorMs) * (backend.inFlight + 1)) / this.slowStart.weight(backend);
  }
}
