import type { Histogram } from 'prom-client';
import { none } from './metric-labels.js';

/** Request durations of one upstream, bucketed as the histogram's `le` bounds (plus +Inf). */
interface DurationCounts {
  readonly upstream: string;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

const durationBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/**
 * The request duration histogram, by upstream. A request only bumps numbers in a typed array;
 * prom-client reads them at scrape through `metric()`, which is not a prom-client Histogram.
 */
export class RequestDurations {
  /** By upstream name (config names, plus '' for none). */
  private readonly byUpstream = new Map<string, DurationCounts>();

  /** Counts one request; returns 1 when it made a new labelled child, else 0. */
  observe(upstream: string, durationMs: number): number {
    let made = 0;
    let duration = this.byUpstream.get(upstream);
    if (duration === undefined) {
      duration = { upstream: upstream === '' ? none : upstream, buckets: new Float64Array(durationBucketsSeconds.length + 1), sum: 0, count: 0 };
      this.byUpstream.set(upstream, duration);
      made = 1;
    }
    // A non-finite duration would poison the sum (and prom-client would throw on it): skip it.
    if (!Number.isFinite(durationMs)) return made;
    const seconds = durationMs / 1000;
    let bucket = 0;
    while (bucket < durationBucketsSeconds.length && seconds > (durationBucketsSeconds[bucket] as number)) bucket++;
    duration.buckets[bucket] = (duration.buckets[bucket] as number) + 1;
    duration.sum += seconds;
    duration.count++;
    return made;
  }

  /** The histogram as a registry metric named `name`, its values read from the counts at scrape. */
  metric(name: string): Histogram {
    const help = "Time from a request's arrival to the end of its response.";
    const get = async () => {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      for (const d of this.byUpstream.values()) {
        let cumulative = 0;
        durationBucketsSeconds.forEach((le, i) => {
          cumulative += d.buckets[i] as number;
          values.push({ metricName: `${name}_bucket`, labels: { le, upstream: d.upstream }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf', upstream: d.upstream }, value: d.count });
        values.push({ metricName: `${name}_sum`, labels: { upstream: d.upstream }, value: d.sum });
        values.push({ metricName: `${name}_count`, labels: { upstream: d.upstream }, value: d.count });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    };
    // The registry reads any object with name/help/type/get; this one is not a prom-client Histogram.
    return { name, help, type: 'histogram', aggregator: 'sum', get, reset: () => this.byUpstream.clear() } as unknown as Histogram;
  }
}
