import { balancers, type Balancer } from '../balancer/index.js';
import { ConfigError } from '../errors.js';
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
}

/** A named set of backends with one balancer and one retry policy. */
export class Upstream {
  readonly name: string;
  readonly backends: readonly Backend[];
  readonly balancer: Balancer;
  readonly retry: RetryOptions;

  constructor(spec: UpstreamSpec) {
    const factory = balancers[spec.balancer];
    if (factory === undefined) {
      throw new ConfigError(`unknown balancer "${spec.balancer}" (known: ${Object.keys(balancers).join(', ')})`);
    }
    // Every URL is checked before any pool is made, so a bad one leaves nothing open.
    const seen = new Set<string>();
    const targets = spec.backends.map((backendSpec) => {
      const target = parseBackendUrl(backendSpec.url);
      if (seen.has(target.url)) throw new ConfigError(`backend ${target.url} is listed twice in upstream "${spec.name}"`);
      if (!(backendSpec.weight > 0)) throw new ConfigError(`backend ${target.url}: weight must be a positive number`);
      seen.add(target.url);
      return target;
    });
    if (targets.length === 0) throw new ConfigError(`upstream "${spec.name}" has no backends`);
    const backends = targets.map((target, i) => new Backend(target, (spec.backends[i] as BackendSpec).weight, spec.pool));
    this.name = spec.name;
    this.backends = backends;
    this.balancer = factory(backends);
    this.retry = spec.retry;
  }

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
