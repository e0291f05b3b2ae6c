import { balancers } from '../balancer/registry.js';
import { SlowStart } from '../balancer/slow-start.js';
import { StickySessions, stickySettings, type StickyOptions } from '../balancer/sticky.js';
import type { Balancer } from '../balancer/types.js';
import { systemClock, systemRandom, type Clock, type Random } from '../clock.js';
import { ConfigError } from '../errors.js';
import { OutlierDetector, type OutlierOptions } from '../health/outlier.js';
import type { Logger } from '../log.js';
import { checkHashKey, type HashKeySpec } from './hash-key.js';
import type { UpstreamForwarding } from './forwarding.js';
import { RetryBudget } from './retry-budget.js';
import type { RetryOptions } from './retry-options.js';
import { Backend, DownReason, parseBackendUrl, unhealthyReasons, type PoolOptions } from './backend.js';
import { RequestQueue, type QueueOptions } from './queue.js';
import { plural } from '../units.js';
import { defaultBackendTls, sameBackendTls } from './tls.js';

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
  readonly forwarding: UpstreamForwarding;
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
  /** Passive outlier detection; null or absent: off. */
  readonly outlier?: OutlierOptions | null;
  /**
   * Below this percentage of healthy backends the upstream balances over all that are not
   * draining or disabled, ignoring health (Envoy's panic threshold). Default 0: off.
   */
  readonly panicThresholdPercent?: number;
  /** Where requests wait when every backend is at its in-flight limit. Default: no queue. */
  readonly queue?: QueueOptions;
  /** WebSocket tunnels: idle timeout, and whether a backend marked down closes its tunnels. Default: 1 h, no. */
  readonly tunnels?: TunnelOptions;
  /** Where ejection and panic lines go. Default: nowhere. */
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly random?: Random;
  /** Told after every down-reason change of one of its backends. */
  readonly onBackendState?: (backend: Backend) => void;
  /**
   * Backends of the previous snapshot by URL (config reload). One with the same URL and pool
   * settings is kept, live state and all; its weight and in-flight cap take the new values.
   */
  readonly existing?: ReadonlyMap<string, Backend>;
  /** Backends come from a discovery source (issue 13): an empty set is allowed (503 until one appears). */
  readonly discovered?: boolean;
  /** Down reasons a backend new to this upstream starts with (a discovery update: `healthCheck` until it passes one). */
  readonly newBackendDownReasons?: number;
  /** URLs of backends the source lists as terminating: they drain while listed; the others lose that bit. */
  readonly terminating?: ReadonlySet<string>;
}

export interface TunnelOptions {
  readonly idleTimeoutMs: number;
  readonly closeOnDown: boolean;
}

function samePool(a: PoolOptions, b: PoolOptions): boolean {
  return (
    a.connectTimeoutMs === b.connectTimeoutMs &&
    a.headersTimeoutMs === b.headersTimeoutMs &&
    a.bodyTimeoutMs === b.bodyTimeoutMs &&
    a.keepAliveTimeoutMs === b.keepAliveTimeoutMs &&
    a.maxHeaderBytes === b.maxHeaderBytes &&
    (a.protocol ?? 'http1') === (b.protocol ?? 'http1') &&
    sameBackendTls(a.tls ?? defaultBackendTls, b.tls ?? defaultBackendTls)
  );
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
  readonly forwarding: UpstreamForwarding;
  /** The sticky layer when session affinity is on (it is also `balancer`), else null. */
  readonly sticky: StickySessions | null;
  /** Where hashing balancers take their key; null means the client address. */
  readonly hashKey: HashKeySpec | null;
  /** Passive outlier detection, told of every attempt's outcome; null when off. */
  readonly outlier: OutlierDetector | null;
  /** Requests waiting for a slot; null when the queue is off. */
  readonly queue: RequestQueue | null;
  /** Healthy share (percent) below which panic mode starts; 0: never. */
  readonly panicThresholdPercent: number;
  readonly tunnels: TunnelOptions;
  /** Its backends speak HTTP/2 (protocol h2 or h2c). */
  readonly multiplexed: boolean;
  /** True while in panic mode. */
  panic = false;
  private readonly clock: Clock;
  private readonly logger: Logger | null;
  private readonly observer: ((backend: Backend) => void) | null;

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
    const panicThresholdPercent = spec.panicThresholdPercent ?? 0;
    if (!(panicThresholdPercent >= 0 && panicThresholdPercent <= 100)) throw new ConfigError('panicThreshold must be between 0 and 100');
    this.tunnels = spec.tunnels ?? { idleTimeoutMs: 3_600_000, closeOnDown: false };
    this.multiplexed = (spec.pool.protocol ?? 'http1') !== 'http1';
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
    if (targets.length === 0 && spec.discovered !== true) throw new ConfigError(`upstream "${spec.name}" has no backends`);
    const clock = spec.clock ?? systemClock;
    const random = spec.random ?? systemRandom;
    const options = { clock, random, slowStart: new SlowStart(clock, slowStartMs), ewmaDecayMs };
    const backends = targets.map((target, i) => {
      const weight = (spec.backends[i] as BackendSpec).weight;
      const kept = spec.existing?.get(target.url);
      if (kept === undefined || !samePool(kept.poolOptions, spec.pool)) {
        const made = new Backend(target, weight, spec.pool, maxInFlight, spec.name);
        made.downReasons = spec.newBackendDownReasons ?? 0;
        return made;
      }
      kept.weight = weight;
      kept.maxInFlight = maxInFlight;
      return kept;
    });
    // Before the balancer is built, so it starts from the listed state; a kept backend's old upstream hears of it.
    if (spec.terminating !== undefined) {
      for (const backend of backends) {
        if (spec.terminating.has(backend.url)) backend.markDown(DownReason.terminating);
        else backend.markUp(DownReason.terminating);
      }
    }
    // Panic is judged afresh below (updatePanic), after the balancer has been built on plain health.
    for (const backend of backends) backend.ignoredReasons = 0;
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
    this.logger = spec.logger ?? null;
    this.panicThresholdPercent = panicThresholdPercent;
    this.observer = spec.onBackendState ?? null;
    const outlier = spec.outlier ?? null;
    this.outlier = outlier === null || (outlier.consecutiveFailures === 0 && outlier.consecutive5xx === 0) ? null : new OutlierDetector(backends, outlier, clock, this.logger);
    this.queue = spec.queue === undefined || spec.queue.size === 0 ? null : new RequestQueue(spec.queue, balancer, backends, clock);
    for (const backend of backends) backend.onStateChange = this.onBackendState;
    this.updatePanic();
  }

  /** Stamps slow start, re-judges panic, tells the balancer and the queue; one bound function shared by all backends. */
  private readonly onBackendState = (backend: Backend): void => {
    if (backend.downReasons === 0) backend.upSinceMs = this.clock.now();
    else if (this.tunnels.closeOnDown && (backend.downReasons & unhealthyReasons & ~backend.ignoredReasons) !== 0) backend.closeTunnels();
    if (this.panicThresholdPercent > 0) this.updatePanic();
    this.balancer.onBackendState?.(backend);
    if (this.queue !== null && backend.available) this.queue.wake();
    if (this.observer !== null) this.observer(backend);
  };

  /**
   * Panic mode (Envoy's healthy_panic_threshold): when fewer than the threshold's share of the
   * backends that are not draining or disabled are healthy, health and ejection are ignored, so
   * load spreads over them all rather than crushing the few left (or failing every request).
   */
  private updatePanic(): void {
    const backends = this.backends;
    let eligible = 0;
    let healthy = 0;
    for (let i = 0; i < backends.length; i++) {
      const bits = (backends[i] as Backend).downReasons;
      if ((bits & (DownReason.draining | DownReason.disabled | DownReason.terminating)) !== 0) continue;
      eligible++;
      if ((bits & unhealthyReasons) === 0) healthy++;
    }
    const panic = eligible > 0 && healthy * 100 < this.panicThresholdPercent * eligible;
    if (panic === this.panic) return;
    this.panic = panic;
    const ignored = panic ? unhealthyReasons : 0;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      const wasUp = backend.up;
      backend.ignoredReasons = ignored;
      if (backend.up !== wasUp) this.balancer.onBackendState?.(backend);
    }
    const share = `${healthy} of ${plural(eligible, 'backend')} healthy, threshold ${this.panicThresholdPercent}%`;
    if (panic) this.logger?.warn({ upstream: this.name, healthy, eligible }, `upstream ${this.name} entering panic mode (${share}): balancing over all backends`);
    else this.logger?.warn({ upstream: this.name, healthy, eligible }, `upstream ${this.name} leaving panic mode (${share})`);
  }

  /** True when at least one backend is available. */
  hasAvailable(): boolean {
    const backends = this.backends;
    for (let i = 0; i < backends.length; i++) if ((backends[i] as Backend).available) return true;
    return false;
  }

  async close(): Promise<void> {
    this.outlier?.stop();
    await Promise.all(this.backends.map((backend) => backend.close()));
  }
}
