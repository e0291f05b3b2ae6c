import type { Random } from '../clock.js';
import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { SlowStart } from './slow-start.js';
import type { Balancer, BalancerOptions, PickContext } from './types.js';

/**
 * Random indexes from a 32-bit xorshift seeded once from the injected Random: a draw is
 * integer arithmetic on a typed array, so picks box no doubles and allocate nothing, while
 * tests that inject a seeded Random stay deterministic.
 */
export class RandomIndex {
  private readonly state = new Uint32Array(1);

  constructor(random: Random) {
    this.state[0] = Math.floor(random.next() * 0xffffffff) || 0x9e3779b9;
  }

  /** An integer in [0, count). */
  below(count: number): number {
    let x = this.state[0] as number;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state[0] = x;
    return Math.floor(((this.state[0] as number) / 4294967296) * count);
  }
}

/**
 * A uniformly random eligible backend other than `not`: two random draws, then a scan from a
 * random start so that a mostly-down list still finds the live ones in one pass.
 */
export function randomEligible(backends: readonly Backend[], ctx: PickContext, random: RandomIndex, not: Backend | undefined): Backend | undefined {
  const count = backends.length;
  if (count === 0) return undefined;
  for (let draw = 0; draw < 2; draw++) {
    const backend = backends[random.below(count)] as Backend;
    if (backend !== not && isEligible(backend, ctx)) return backend;
  }
  const start = random.below(count);
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
  private readonly random: RandomIndex;
  private readonly slowStart: SlowStart;

  constructor(backends: readonly Backend[], options: BalancerOptions) {
    this.backends = backends;
    this.random = new RandomIndex(options.random);
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
  private readonly random: RandomIndex;
  private readonly slowStart: SlowStart;
  private readonly uniform: boolean;

  constructor(backends: readonly Backend[], options: BalancerOptions, uniform: boolean) {
    this.backends = backends;
    this.random = new RandomIndex(options.random);
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
    let point = (this.random.below(1 << 30) / (1 << 30)) * total;
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
