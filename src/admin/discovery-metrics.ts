import { Counter, Gauge, type Registry } from 'prom-client';

/** One upstream's discovery as the metrics read it at scrape time (issue 13). */
export interface DiscoveryMetricsSource {
  readonly upstream: string;
  /** Its kind: `dns`, `kubernetes` or `consul`. */
  readonly kind: string;
  readonly updates: number;
  readonly errors: number;
  /** True while the last refresh failed and the last good set is in force. */
  readonly failing: boolean;
  readonly current: readonly unknown[];
}

/** Discovery counters and gauges by upstream and source, read from the sources at scrape. */
export function registerDiscoveryMetrics(registry: Registry, discoveries: () => Iterable<DiscoveryMetricsSource>, prefix: string): void {
  const registers = [registry];
  const labelNames = ['upstream', 'source'] as const;
  const each = (fn: (labels: { upstream: string; source: string }, d: DiscoveryMetricsSource) => void): void => {
    for (const d of discoveries()) fn({ upstream: d.upstream, source: d.kind }, d);
  };
  new Counter({
    name: `${prefix}discovery_updates_total`,
    help: 'Answers a discovery source gave (a backend set, changed or not).',
    labelNames,
    registers,
    collect() {
      this.reset();
      each((labels, d) => this.inc(labels, d.updates));
    },
  });
  new Counter({
    name: `${prefix}discovery_errors_total`,
    help: 'Refreshes of a discovery source that failed (the last good set stayed in force).',
    labelNames,
    registers,
    collect() {
      this.reset();
      each((labels, d) => this.inc(labels, d.errors));
    },
  });
  new Gauge({
    name: `${prefix}discovery_failing`,
    help: '1 while the last refresh of the discovery source failed and its last good set serves, else 0.',
    labelNames,
    registers,
    collect() {
      this.reset();
      each((labels, d) => this.set(labels, d.failing ? 1 : 0));
    },
  });
  new Gauge({
    name: `${prefix}discovery_backends`,
    help: 'Backends in the set the discovery source last gave (terminating ones included).',
    labelNames,
    registers,
    collect() {
      this.reset();
      each((labels, d) => this.set(labels, d.current.length));
    },
  });
}
