import type { Backend } from '../upstream/backend.js';
import { Ewma } from './ewma.js';
import { IpHash, Maglev, RingHash } from './hash.js';
import { LeastConn } from './least-conn.js';
import { PowerOfTwo, RandomChoice } from './p2c.js';
import { RoundRobin } from './round-robin.js';
import type { BalancerFactory, BalancerOptions } from './types.js';
import { SmoothWeighted } from './weighted.js';

/** True when every backend has the same weight and no ramp can make them differ. */
function uniform(backends: readonly Backend[], options: BalancerOptions): boolean {
  if (options.slowStart.windowMs > 0) return false;
  for (let i = 1; i < backends.length; i++) if ((backends[i] as Backend).weight !== (backends[0] as Backend).weight) return false;
  return true;
}

/** Balancers by the name used in flags and config. Nothing in balancer/ imports this file. */
export const balancers: Readonly<Record<string, BalancerFactory>> = {
  // Equal weights keep the O(1) counter; anything else is smooth weighted round-robin.
  'round-robin': (backends, options) => (uniform(backends, options) ? new RoundRobin(backends) : new SmoothWeighted(backends, options)),
  'weighted-round-robin': (backends, options) => new SmoothWeighted(backends, options),
  'least-conn': (backends, options) => new LeastConn(backends, options),
  p2c: (backends, options) => new PowerOfTwo(backends, options),
  ewma: (backends, options) => new Ewma(backends, options),
  random: (backends, options) => new RandomChoice(backends, options, uniform(backends, options)),
  'ip-hash': (backends) => new IpHash(backends),
  'ring-hash': (backends) => new RingHash(backends),
  maglev: (backends) => new Maglev(backends),
};
