// Preloaded by bench/wrk-counts.mjs --eld (node --import): the first SIGUSR2 starts a window,
// the second writes event-loop delay percentiles and GC pauses (by kind) of that window to
// $SWY_LOOP_DELAY_FILE. Measurement only; the proxy does not load it.
import fs from 'node:fs';
import { PerformanceObserver, constants, monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.SWY_LOOP_DELAY_FILE;
const delay = monitorEventLoopDelay({ resolution: 1 });
const kinds = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak' };
let gc = null;
const observer = new PerformanceObserver((list) => {
  if (gc === null) return;
  for (const e of list.getEntries()) {
    const kind = kinds[e.detail?.kind ?? e.kind] ?? 'other';
    const k = (gc[kind] ??= { count: 0, ms: 0, maxMs: 0 });
    k.count++;
    k.ms += e.duration;
    k.maxMs = Math.max(k.maxMs, e.duration);
  }
});
observer.observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  if (gc === null) {
    gc = {};
    delay.reset();
    delay.enable();
    return;
  }
  delay.disable();
  const ms = (ns) => +(ns / 1e6).toFixed(2);
  for (const k of Object.values(gc)) { k.ms = +k.ms.toFixed(1); k.maxMs = +k.maxMs.toFixed(2); }
  const heap = process.memoryUsage();
  fs.writeFileSync(file, JSON.stringify({ delayMs: { p50: ms(delay.percentile(50)), p99: ms(delay.percentile(99)), max: ms(delay.max), mean: ms(delay.mean) }, gc, heapUsedMiB: Math.round(heap.heapUsed / 2 ** 20), rssMiB: Math.round(heap.rss / 2 ** 20) }));
  gc = null;
});
