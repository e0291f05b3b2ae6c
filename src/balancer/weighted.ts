import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { SlowStart } from './slow-start.js';
import type { Balancer, BalancerOptions, PickContext } from './types.js';

/**
 * Smooth weighted round-robin as nginx does it: each pick adds every eligible backend's
 * effective weight to its running score, takes the highest score and subtracts the total from
 * it. Weights 5,1,1 give a a b a c a a: interleaved, never in bursts.
 * A failed attempt halves the backend's effective weight; each round it climbs back by 1
 * (nginx's +1), so a flaky backend loses share and regains it as it recovers.
 */
export class SmoothWeighted implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly slowStart: SlowStart;
  private readonly index: Map<Backend, number>;
  private readonly current: Float64Array;
  /** Effective weight in the configured weight's units: nginx's effective_weight. */
  private readonly effective: Float64Array;

  constructor(backends: readonly Backend[], options: BalancerOptions) {
    this.backends = backends;
    this.slowStart = options.slowStart;
    this.index = new Map(backends.map((backend, i) => [backend, i]));
    this.current = new Float64Array(backends.length);
    this.effective = new Float64Array(backends.map((backend) => backend.weight));
  }

  pick(ctx: PickContext): Backend | undefined {
    const backends = this.backends;
    const current = this.current;
    const effective = this.effective;
    let total = 0;
    let best = -1;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      if (!isEligible(backend, ctx)) continue;
      const configured = backend.weight;
      let weight = effective[i] as number;
      if (weight < configured) effective[i] = Math.min(configured, weight + 1);
      // Slow start scales the effective weight while the backend ramps up.
      weight = this.slowStart.windowMs > 0 ? (weight * this.slowStart.weight(backend)) / configured : weight;
      current[i] = (current[i] as number) + weight;
      total += weight;
      if (best === -1 || (current[i] as number) > (current[best] as number)) best = i;
    }
    if (best === -1) return undefined;
    current[best] = (current[best] as number) - total;
    return backends[best];
  }

  onAttemptEnd(backend: Backend, failed: boolean): void {
    if (!failed) return;
    const i = this.index.get(backend);
    if (i === undefined) return;
    this.effective[i] = Math.max(0, (this.effective[i] as number) - backend.weight / 2);
  }
}
