import type { Clock, Random, Timer } from '../clock.js';

/** Retry delays: `initialMs` doubling up to `maxMs`. */
export interface BackoffPolicy {
  readonly initial: number;
  readonly max: number;
}

/**
 * Waits between retries of a discovery source: exponential, jittered down to half so replicas
 * that failed together do not retry together, and cut short by `cancel()` (the source stops).
 */
export class Backoff {
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly policy: BackoffPolicy;
  private timer: Timer | undefined;
  private wake: (() => void) | undefined;
  private cancelled = false;

  constructor(clock: Clock, random: Random, policy: BackoffPolicy) {
    this.clock = clock;
    this.random = random;
    this.policy = policy;
  }

  /** The delay after `failures` failures in a row (0: the first). */
  delayMs(failures: number): number {
    const full = Math.min(this.policy.max, this.policy.initial * 2 ** Math.min(failures, 30));
    return full / 2 + (full / 2) * this.random.next();
  }

  /** Resolves after `delayMs(failures)`, or at once when cancelled. */
  wait(failures: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.cancelled) return resolve();
      this.wake = resolve;
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined;
        this.wake = undefined;
        resolve();
      }, this.delayMs(failures));
    });
  }

  /** Ends the current wait and every later one at once. */
  cancel(): void {
    this.cancelled = true;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
    this.wake = undefined;
  }
}
