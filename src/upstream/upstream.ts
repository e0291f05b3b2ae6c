import { balancers, type Balancer } from '../balancer/index.js';
import { SlowStart } from '../balancer/slow-start.js';
import { StickySessions, stickySettings, type StickyOptions } from '../balancer/sticky.js';
import { systemClock, systemRandom, type Clock, type Random } from '../clock.js';
import { ConfigError } from '../errors.js';
import { checkHashKey, type HashKeySpec } from '../proxy/request-keys.js';
import type { ForwardingOptions } from '../proxy/headers.js';
import { RetryBudget } from '../proxy/retry-budget.js';
import type { RetryOptions } from '../proxy/retry.js';
import { Backend, parseBackendUrl, type PoolOptions } from './backend.js';

export interface BackendSpec {
  readonly url: string;
  readonly weight: number;
}

export interface UpstreamSpec {
  readonly name: string;
  readonly backends: readonly BackendSpec[];
  readonly balancer: string;
  readonly retry: RetryOptions;
  readonly pool: PoolOptions;
  /** How request headers are rewritten for this upstream's backends. */
  readonly forwarding: ForwardingOptions;
  /** Attempts one backend may have in flight. Default: no limit. */
  readonly maxInFlight?: number;
  /** Ramp of a backend's weight after it comes up. Default 0: none. */
  readonly slowStartMs?: number;
  /** Peak-EWMA decay time constant. Default 10 s. */
  readonly ewmaDecayMs?: number;
  /** Key for ring-hash and maglev. Default: the client address. */
  readonly hashKey?: HashKeySpec;
  /** Cookie-based session affinity on top of the balancer. Default: off. */
  readonly sticky?: StickyOptions;
  readonly clock?: Clock;
  readonly random?: Random;
  /**
   * Backends of the previous snapshot by URL (config reload). One with the same URL and pool
   * settings is kept, live state and all; its weight and in-flight cap take the new values.
   */
  readonly existing?: ReadonlyMap<string, Backend>;
}

function samePool(a: PoolOptions, b: PoolOptions): boolean {
  return a.connectTimeoutMs === b.connectTimeoutMs && a.headersTimeoutMs === b.headersTimeoutMs && a.bodyTimeoutMs === b.bodyTimeoutMs && a.keepAliveTimeoutMs === b.keepAliveTimeoutMs;
}

/** A named set of backends with one balancer and one retry policy. */
export class Upstream {
  readonly name: string;
  readonly backends: readonly Backend[];
  readonly balancer: Balancer;
  /** The balancer's name, e.g. `round-robin`. */
  readonly balancerName: string;
  readonly retry: RetryOptions;
  /** Requests and retries in flight, against the retry budget. */
  readonly retryBudget: RetryBudget;
  /** Random source of balancers and of retry jitter. */
  readonly random: Random;
  readonly forwarding: ForwardingOptions;
  /** The sticky layer when session affinity is on (it is also `balancer`), else null. */
  readonly sticky: StickySessions | null;
  /** Where hashing balancers take their key; null means the client address. */
  readonly hashKey: HashKeySpec | null;
  private readonly clock: Clock;

  constructor(spec: UpstreamSpec) {
    const factory = balancers[spec.balancer];
    if (factory === undefined) {
      throw new ConfigError(`unknown balancer "${spec.balancer}" (known: ${Object.keys(balancers).join(', ')})`);
    }
    const maxInFlight = spec.maxInFlight ?? Number.POSITIVE_INFINITY;
    if (!(maxInFlight >= 1)) throw new ConfigError('maxInFlight must be at least 1');
    const slowStartMs = spec.slowStartMs ?? 0;
    if (!(slowStartMs >= 0) || !Number.isFinite(slowStartMs)) throw new ConfigError('slowStartMs must be 0 or a positive number of milliseconds');
    const ewmaDecayMs = spec.ewmaDecayMs ?? 10_000;
    if (!(ewmaDecayMs > 0) || !Number.isFinite(ewmaDecayMs)) throw new ConfigError('ewmaDecayMs must be a positive number of milliseconds');
    const hashKey = spec.hashKey === undefined ? null : checkHashKey(spec.hashKey);
    const stickyChecked = spec.sticky === undefined ? null : stickySettings(spec.sticky);
    // Every URL is checked before any pool is made, so a bad one leaves nothing open.
    const seen = new Set<string>();
    const targets = spec.backends.map((backendSpec) => {
      const target = parseBackendUrl(backendSpec.url);
      if (seen.has(target.url)) throw new ConfigError(`backend ${target.url} is listed twice in upstream "${spec.name}"`);
      if (!(backendSpec.weight > 0) || !Number.isFinite(backendSpec.weight)) throw new ConfigError(`backend ${target.url}: weight must be a positive number`);
      seen.add(target.url);
      return target;
    });
    if (targets.length === 0) throw new ConfigError(`upstream "${spec.name}" has no backends`);
    const clock = spec.clock ?? systemClock;
    const random = spec.random ?? systemRandom;
    const options = { clock, random, slowStart: new SlowStart(clock, slowStartMs), ewmaDecayMs };
    const backends = targets.map((target, i) => {
      const weight = (spec.backends[i] as BackendSpec).weight;
      const kept = spec.existing?.get(target.url);
      if (kept === undefined || !samePool(kept.poolOptions, spec.pool)) return new Backend(target, weight, spec.pool, maxInFlight, spec.name);
      kept.weight = weight;
      kept.maxInFlight = maxInFlight;
      return kept;
    });
    const inner = factory(backends, options);
    const sticky = stickyChecked === null ? null : new StickySessions(inner, backends, stickyChecked);
    const balancer: Balancer = sticky ?? inner;
    this.name = spec.name;
    this.backends = backends;
    this.balancer = balancer;
    this.balancerName = spec.balancer;
    this.sticky = sticky;
    this.hashKey = hashKey;
    this.retry = spec.retry;
    this.retryBudget = new RetryBudget(spec.retry.budgetMinRetries, spec.retry.budgetPercent);
    this.random = random;
    this.forwarding = spec.forwarding;
    this.clock = clock;
    for (const backend of backends) backend.onStateChange = this.onBackendState;
  }

  /** Stamps slow start and tells the balancer; one bound function shared by all backends. */
  private readonly onBackendState = (backend: Backend): void => {
    if (backend.downReasons === 0) backend.upSinceMs = this.clock.now();
    this.balancer.onBackendState?.(backend);
  };

  /** True when at least one backend is available. */
  hasAvailable(): boolean {
    const backends = this.backends;
    for (let i = 0; i < backends.length; i++) if ((backends[i] as Backend).available) return true;
    return false;
  }

  async close(): Promise<void> {
    await Promise.all(this.backends.map((backend) => backend.close()));
  }
}
