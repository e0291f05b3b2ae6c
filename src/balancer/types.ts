import type { Clock, Random } from '../clock.js';
import type { Backend } from '../upstream/backend.js';
import type { SlowStart } from './slow-start.js';

/** What a balancer may look at when it picks. Built once per request, reused across attempts. */
export interface PickContext {
  readonly clientIp: string;
  /** The consistent-hashing key (header, cookie, path); hashing balancers fall back to clientIp. */
  readonly hashKey?: string | undefined;
  /** Backends this request already tried and gave up on. */
  readonly exclude?: ReadonlySet<Backend> | undefined;
}

/**
 * Chooses one available backend, or undefined when none is. Allocates nothing per pick.
 * The optional hooks let a balancer track load: the proxy calls them right after it changes a
 * backend's in-flight count, and the upstream calls onBackendState when a backend goes down or up.
 */
export interface Balancer {
  pick(ctx: PickContext): Backend | undefined;
  /** An attempt was sent to `backend` (its inFlight already counts it). */
  onAttemptStart?(backend: Backend): void;
  /** An attempt ended; `latencyMs` is the time to the response headers, or to the failure. */
  onAttemptEnd?(backend: Backend, failed: boolean, latencyMs: number): void;
  /** A down reason of `backend` was set or cleared, or its upstream entered or left panic mode. */
  onBackendState?(backend: Backend): void;
}

/** What balancers share: time and randomness (injected in tests) and the slow-start ramp. */
export interface BalancerOptions {
  readonly clock: Clock;
  readonly random: Random;
  readonly slowStart: SlowStart;
  /** Peak-EWMA: time for a latency sample's weight to fall to 1/e. */
  readonly ewmaDecayMs: number;
}

export type BalancerFactory = (backends: readonly Backend[], options: BalancerOptions) => Balancer;
