import type { Clock } from '../clock.js';
import type { Backend } from '../upstream/backend.js';

/** Share of its weight a backend gets the moment it comes up. */
const startShare = 0.1;

/**
 * Slow start: a backend that comes back up takes a share of its weight that grows linearly
 * from 10% to 100% over `windowMs`, so a cold cache or JIT is not hit with its full share at
 * once. `backend.upSinceMs` is stamped by its upstream on every down-to-up transition.
 */
export class SlowStart {
  readonly windowMs: number;
  private readonly clock: Clock;

  constructor(clock: Clock, windowMs: number) {
    this.clock = clock;
    this.windowMs = windowMs;
  }

  /** The weight balancers use now: the configured one, scaled while ramping. */
  weight(backend: Backend): number {
    if (this.windowMs <= 0) return backend.weight;
    const elapsed = this.clock.now() - backend.upSinceMs;
    if (elapsed >= this.windowMs) return backend.weight;
    return backend.weight * (startShare + ((1 - startShare) * Math.max(0, elapsed)) / this.windowMs);
  }

  ramping(backend: Backend): boolean {
    return this.windowMs > 0 && this.clock.now() - backend.upSinceMs < this.windowMs;
  }
}
