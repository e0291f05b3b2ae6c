import type { Random } from '../clock.js';
import type { Backend } from '../upstream/backend.js';
import { isEligible, type Balancer, type BalancerOptions, type PickContext } from './index.js';
import type { SlowStart } from './slow-start.js';

/**
 * A uniformly random eligible backend other than `not`: two random draws, then a scan from a
 * random start so that a mostly-down list still finds the live ones in one pass.
 */
export function randomEligible(backends: readonly Backend[], ctx: PickContext, random: Random, not: Backend | undefined): Backend | undefined {
  const count = backends.length;
  if (count === 0) return undefined;
  for (let draw = 0; draw < 2; draw++) {
    const backend = backends[Math.floor(random.next() * count)] as Backend;
    if (backend !== not && isEligible(backend, ctx)) return backend;
  }
  const start = Math.floor(random.next() * count);
  for (let k = 0; k < count; k++) {
    const backend = backends[(start + k) % count] as Backend;
    if (backend !== not && isEligible(backend, ctx)) return backend;
  }
  return undefined;
}

/**
 * Power of two random choices: draw two distinct eligible backends at random and take the one
 * with the lower (in-flight + 1) / weight. Nearly as good as least-conn, O(1), and no shared
 * ordering, so it stays fair when several proxies balance over the same backends.
 */
export class PowerOfTwo implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly random: Random;
  private readonly slowStart: SlowStart;

  constructor(backends: readonly Backend[], options: BalancerOptions) {
    this.backends = backends;
    this.random = options.random;
    this.slowStart = options.slowStart;
  }

  pick(ctx: PickContext): Backend | undefined {
    const first = randomEligible(this.backends, ctx, this.random, undefined);
    if (first === undefined) return undefined;
    const second = randomEligible(this.backends, ctx, this.random, first);
    if (second === undefined) return first;
    const slowStart = this.slowStart;
    return (second.inFlight + 1) / slowStart.weight(second) < (first.inFlight + 1) / slowStart.weight(first) ? second : first;
  }
}

/** A random eligible backend, in proportion to the weights (uniform draws when they are equal). */
export class RandomChoice implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly random: Random;
  private readonly slowStart: SlowStart;
  private readonly uniform: boolean;

  constructor(backends: readonly Backend[], options: BalancerOptions, uniform: boolean) {
    this.backends = backends;
    this.random = options.random;
    this.slowStart = options.slowStart;
    this.uniform = uniform;
  }

  pick(ctx: PickContext): Backend | undefined {
    const backends = this.backends;
    if (this.uniform) return randomEligible(backends, ctx, this.random, undefined);
    let total = 0;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      if (isEligible(backend, ctx)) total += this.slowStart.weight(backend);
    }
    if (total === 0) return undefined;
    let point = this.random.next() * total;
    let chosen: Backend | undefined;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      if (!isEligible(backend, ctx)) continue;
      chosen = backend;
      point -= this.slowStart.weight(backend);
      if (point < 0) break;
    }
    return chosen;
  }
}
