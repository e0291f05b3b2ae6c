import { createRequire } from 'node:module';
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { Gauge, Histogram, type Registry } from 'prom-client';

type DefaultMetric = (registry: Registry, config: { readonly prefix: string }) => void;

/**
 * prom-client's default process metrics, minus two: its `gc` metric registers a PerformanceObserver
 * that is never disconnected (it pins the registry, and everything its collect callbacks reach,
 * for the life of the process), and its `eventLoopLag` enables a 10 ms sampler that nothing can
 * stop. Both are replaced below by versions that stop on close. The rest only read at scrape time.
 * The module paths are prom-client 15.1.3's (pinned exactly in package.json).
 */
const defaultMetricModules = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  ...(typeof process.getActiveResourcesInfo === 'function' ? ['processResources'] : []),
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
] as const;

const requireCjs = createRequire(import.meta.url);

const gcKinds: Readonly<Record<number, string>> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

/** Event-loop delay percentiles reported as gauges, in the same names prom-client uses. */
const lagStats = [
  ['min', (h: LoopDelay) => h.min],
  ['max', (h: LoopDelay) => h.max],
  ['mean', (h: LoopDelay) => h.mean],
  ['stddev', (h: LoopDelay) => h.stddev],
  ['p50', (h: LoopDelay) => h.percentile(50)],
  ['p90', (h: LoopDelay) => h.percentile(90)],
  ['p99', (h: LoopDelay) => h.percentile(99)],
] as const;

type LoopDelay = ReturnType<typeof monitorEventLoopDelay>;

/**
 * Registers process metrics (CPU, memory, heap, descriptors, handles, Node version, event-loop
 * delay, GC durations) on `registry`, names prefixed with `prefix`. Returns the function that
 * stops the event-loop sampler and the GC observer; after it, the registry holds nothing alive.
 */
export function registerProcessMetrics(registry: Registry, prefix: string): () => void {
  for (const name of defaultMetricModules) {
    (requireCjs(`prom-client/lib/metrics/${name}.js`) as DefaultMetric)(registry, { prefix });
  }

  // Delay since the previous scrape (the sampler is reset after each), as prom-client reports it.
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const lag = lagStats.map(([stat]) => new Gauge({ name: `${prefix}nodejs_eventloop_lag_${stat}_seconds`, help: `Event-loop delay since the previous scrape: ${stat}.`, registers: [registry], aggregator: 'max' }));
  new Gauge({
    name: `${prefix}nodejs_eventloop_lag_seconds`,
    help: 'Event-loop delay since the previous scrape: mean.',
    registers: [registry],
    // Merged across worker processes (docs/workers.md): the worst one's.
    aggregator: 'max',
    collect() {
      // Before the first sample the histogram reports NaN (mean) and 9.2e18 (min): report 0.
      const empty = delay.count === 0;
      this.set(empty ? 0 : delay.mean / 1e9);
      for (let i = 0; i < lagStats.length; i++) (lag[i] as Gauge).set(empty ? 0 : (lagStats[i] as (typeof lagStats)[number])[1](delay) / 1e9);
      delay.reset();
    },
  });

  const gc = new Histogram({
    name: `${prefix}nodejs_gc_duration_seconds`,
    help: 'Garbage collection duration by kind: major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: [0.001, 0.01, 0.1, 1, 2, 5],
    registers: [registry],
  });
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } }).detail?.kind;
      gc.observe({ kind: gcKinds[kind ?? -1] ?? 'unknown' }, entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });

  return () => {
    observer.disconnect();
    delay.disable();
  };
}
