import type { DiscoveryConfig } from '../config/discovery-schema.js';
import { ConfigError } from '../errors.js';
import { DnsSource } from './dns.js';
import type { DiscoveryDeps, DiscoverySource } from './source.js';

/**
 * The source an upstream's `discover:` section describes. Each source class takes
 * `(options, deps)`: the zod-parsed section of its kind, and `{ logger, clock? }`.
 */
export function createSource(spec: DiscoveryConfig, deps: DiscoveryDeps): DiscoverySource {
  if (spec.dns !== undefined) return new DnsSource(spec.dns, deps);
  if (spec.kubernetes !== undefined) throw new ConfigError('discovery source kubernetes is not available yet');
  if (spec.consul !== undefined) throw new ConfigError('discovery source consul is not available yet');
  throw new ConfigError('discover needs one source: dns, kubernetes or consul');
}
