import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { Balancer, PickContext } from './types.js';

/**
 * Plain round-robin with one shared counter: start at the counter, skip backends that are not
 * eligible, and continue the rotation after the one chosen.
 */
export class RoundRobin implements Balancer {
  private readonly backends: readonly Backend[];
  private next = 0;

  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }

  pick(ctx: PickContext): Backend | undefined {
    const backends = this.backends;
    const count = backends.length;
    let index = this.next;
    for (let seen = 0; seen < count; seen++) {
      if (index >= count) index = 0;
      const backend = backends[index] as Backend;
      if (isEligible(backend, ctx)) {
        this.next = index + 1;
        return backend;
      }
      index++;
    }
    return undefined;
  }
}
