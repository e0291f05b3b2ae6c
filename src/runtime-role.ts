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
}

export const oneProcess: RuntimeRole = { listen: true, healthChecks: true };
