/**
 * A discovery source (issue 13): something that watches an external system (DNS, the Kubernetes
 * API, Consul) and reports the whole backend set of one upstream each time it changes. Sources
 * know their wire protocol only; applying a set to an upstream (reusing backends, draining the
 * removed, debouncing) is the runtime's job.
 */

import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';

/** What every source class gets besides its options: `new XSource(options, deps)`. */
export interface DiscoveryDeps {
  readonly logger: Logger;
  /** Schedules refreshes, retries and timeouts. Default: the system clock. */
  readonly clock?: Clock;
}

/** One backend a source found. */
export interface DiscoveredBackend {
  /** Backend URL, e.g. `http://10.0.0.7:8080` (IPv6 in brackets). */
  readonly url: string;
  /** Relative weight (SRV weight, 1 when the source has none). */
  readonly weight: number;
  /** Going away (a Kubernetes endpoint that is `terminating`): finishes what it has, takes nothing new. */
  readonly terminating: boolean;
}

/** Where a source delivers what it finds. */
export interface DiscoverySink {
  /** The complete current set; an empty array means the source says there are none (scaled to zero). */
  update(backends: readonly DiscoveredBackend[]): void;
  /** The source could not refresh (timeout, unreachable, bad answer); the last good set stays in force. */
  error(err: Error): void;
}

export interface DiscoverySource {
  /** `dns`, `kubernetes` or `consul`. */
  readonly kind: string;
  /** What is watched, for logs and the admin API, e.g. `dns+srv://_http._tcp.web.example`. */
  readonly description: string;
  /** Starts watching; every change is reported to `sink` until `stop()`. */
  start(sink: DiscoverySink): void;
  /** Stops watching: cancels timers and open requests; resolves when nothing is left running. */
  stop(): Promise<void>;
}
