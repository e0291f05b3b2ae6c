import type { DiscoveryConfig } from '../config/discovery-schema.js';
import { ConfigError } from '../errors.js';
import { ConsulSource } from './consul.js';
import { DnsSource } from './dns.js';
import { KubernetesSource } from './kubernetes.js';
import type { DiscoveryDeps, DiscoverySource } from './source.js';

/**
 * The source an upstream's `discover:` section describes. Each source class takes
 * `(options, deps)`: the zod-parsed section of its kind, and `{ logger, clock? }`.
 */
export function createSource(spec: DiscoveryConfig, deps: DiscoveryDeps): DiscoverySource {
  if (spec.dns !== undefined) return new DnsSource(spec.dns, deps);
  if (spec.kubernetes !== undefined) return new KubernetesSource(spec.kubernetes, deps);
  if (spec.consul !== undefined) return new ConsulSource(spec.consul, deps);
  throw new ConfigError('discover needs one source: dns, kubernetes or consul');
}
