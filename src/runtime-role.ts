import type { DiscoveredBackend } from './discovery/source.js';
import type { Backend } from './upstream/backend.js';

/**
 * What this process does of the work (src/cluster/): everything (one process), the primary's
 * part (health checks, no listeners) or a worker's (listeners, no health checks).
 */
export interface RuntimeRole {
  /** Open the config's listeners. */
  readonly listen: boolean;
  /** Run active health checks. */
  readonly healthChecks: boolean;
  /** Sticky secrets by upstream; a worker gets the primary's so cookies work on every worker. */
  readonly stickySecrets?: Map<string, string>;
  /** Told of every down-reason change (the primary broadcasts, a worker reports). */
  readonly onBackendState?: (backend: Backend) => void;
  /** Each listener's accept batch is divided by this (workers share the socket). Default 1. */
  readonly acceptShare?: number;
  /** Log "Load Balancer started" per listener (a worker leaves it to the primary). Default true. */
  readonly announce?: boolean;
  /** Discovery: a worker follows the primary's sources, the primary forwards what it applies. Default: run the sources. */
  readonly discovery?: DiscoveryRole;
}

export const oneProcess: RuntimeRole = { listen: true, healthChecks: true };

/** How a process takes part in discovery: a worker follows the primary's sources (src/cluster/). */
export interface DiscoveryRole {
  /**
   * Set in a worker: run no source; start with these sets (the primary's, by upstream) and apply
   * the ones `follow()` is given.
   */
  readonly follow?: ReadonlyMap<string, readonly DiscoveredBackend[]>;
  /** Told of every set applied to an upstream after start (the primary sends it to its workers). */
  readonly onApplied?: (upstream: string, set: readonly DiscoveredBackend[]) => void;
}
