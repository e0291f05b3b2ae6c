import { Counter, Gauge, Registry } from 'prom-client';
import {
  attemptChannel,
  backendStateChannel,
  ejectionChannel,
  healthCheckChannel,
  reloadChannel,
  requestChannel,
  type AttemptEvent,
  type BackendStateEvent,
  type EjectionEvent,
  type EventBackend,
  type HealthCheckEvent,
  type ReloadEvent,
  type RequestEvent,
} from '../events.js';
import { registerBackendGauges, registerCertificateGauge, type MetricsSource } from './backend-gauges.js';
import { registerListenerGauges } from './listener-gauges.js';
import { attemptOutcomeLabels, codeClassIndex, codeClassLabels, methodIndex, methodLabels, none, outcomeIndex } from './metric-labels.js';
import { registerDiscoveryMetrics } from './discovery-metrics.js';
import { registerProcessMetrics } from './process-metrics.js';
import { RequestDurations } from './request-durations.js';

export type { MetricsSource } from './backend-gauges.js';
export { attemptOutcomeLabels, codeClassLabels, methodLabels } from './metric-labels.js';

/** One Prometheus registry fed by Switchyard's diagnostics channels. */
export interface Metrics {
  /** Content-Type of `text()`: the Prometheus text exposition format 0.0.4. */
  readonly contentType: string;
  text(): Promise<string>;
  /** The same as prom-client's JSON, which AggregatorRegistry merges across worker processes. */
  json(): Promise<unknown[]>;
  /** Stops listening to events and sampling the process; `text()` then reports the final counts. */
  close(): void;
}

const prefix = 'switchyard_';
const requestSlots = methodLabels.length * codeClassLabels.length;

/**
 * Labelled children of one backend (or of the "no backend" requests of one upstream), made on
 * first use so an event only indexes an array; each array's length bounds its label set.
 */
interface Series {
  readonly upstream: string;
  readonly backend: string;
  /** Per-request counts stay plain numbers; prom-client sees them only at scrape (collect). */
  readonly requests: Float64Array;
  readonly attempts: Float64Array;
  retries: number;
  checks: [pass: Counter.Internal, fail: Counter.Internal] | undefined;
  transitions: [up: Counter.Internal, down: Counter.Internal] | undefined;
  ejections: Counter.Internal | undefined;
}

/**
 * Prometheus metrics on a registry of its own, so several Switchyards in one process stay apart.
 * Per-request events only bump numbers in typed arrays: prom-client hashes label sets on every
 * inc/observe, which is too dear per request, so the request metrics are handed to it at scrape.
 */
export class SwitchyardMetrics implements Metrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;
  private readonly requests: Counter<'upstream' | 'backend' | 'method' | 'code_class'>;
  private readonly attempts: Counter<'upstream' | 'backend' | 'outcome'>;
  private readonly retries: Counter<'upstream' | 'backend'>;
  private readonly checks: Counter<'upstream' | 'backend' | 'result'>;
  private readonly ejections: Counter<'upstream' | 'backend'>;
  private readonly transitions: Counter<'upstream' | 'backend' | 'to'>;
  private readonly reloads: Counter<'result'>;
  private readonly reloadOk: Gauge;
  private readonly reloadSuccessTime: Gauge;
  private readonly byBackend = new WeakMap<EventBackend, Series>();
  /** "No backend" series, by upstream name (config names, plus '' for none). */
  private readonly byUpstream = new Map<string, Series>();
  private readonly durations = new RequestDurations();
  /** Requests by the HTTP version the client spoke, as plain numbers until a scrape. */
  private readonly byProtocol = new Map<string, number>();
  /** Every series ever made, for the scrape-time hand-over. */
  private readonly allSeries: Series[] = [];
  private readonly stopProcessMetrics: () => void;
  private closed = false;
  private children = 0;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    const metrics = this;
    this.requests = new Counter({
      name: `${prefix}requests_total`,
      help: 'Client requests finished, by upstream, last backend tried, method and status class (none: no status was sent).',
      labelNames: ['upstream', 'backend', 'method', 'code_class'],
      registers,
      collect() {
        this.reset();
        for (const series of metrics.allSeries) {
          series.requests.forEach((count, slot) => {
            if (count === 0) return;
            const method = methodLabels[Math.floor(slot / codeClassLabels.length)] as string;
            const codeClass = codeClassLabels[slot % codeClassLabels.length] as string;
            this.inc({ upstream: series.upstream, backend: series.backend, method, code_class: codeClass }, count);
          });
        }
      },
    });
    this.registry.registerMetric(this.durations.metric(`${prefix}request_duration_seconds`));
    this.attempts = new Counter({
      name: `${prefix}attempts_total`,
      help: 'Attempts against backends, by outcome (response, connect, reset, timeout, protocol, aborted).',
      labelNames: ['upstream', 'backend', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const series of metrics.allSeries) {
          series.attempts.forEach((count, slot) => {
            if (count > 0) this.inc({ upstream: series.upstream, backend: series.backend, outcome: attemptOutcomeLabels[slot] as string }, count);
          });
        }
      },
    });
    this.retries = new Counter({
      name: `${prefix}retries_total`,
      help: 'Attempts that were followed by another attempt.',
      labelNames: ['upstream', 'backend'],
      registers,
      collect() {
        this.reset();
        for (const series of metrics.allSeries) if (series.retries > 0) this.inc({ upstream: series.upstream, backend: series.backend }, series.retries);
      },
    });
    this.checks = new Counter({ name: `${prefix}health_checks_total`, help: 'Active health checks, by result.', labelNames: ['upstream', 'backend', 'result'], registers });
    this.ejections = new Counter({ name: `${prefix}ejections_total`, help: 'Times outlier detection took a backend out of rotation.', labelNames: ['upstream', 'backend'], registers });
    this.transitions = new Counter({ name: `${prefix}backend_state_changes_total`, help: 'Times the backend went down (first down reason set) or up (last one cleared).', labelNames: ['upstream', 'backend', 'to'], registers });
    // Requests by the HTTP version the client spoke (`1.0`, `1.1`, `2`): a handful of series.
    new Counter({
      name: `${prefix}requests_by_protocol_total`,
      help: 'Client requests finished, by the HTTP version the client spoke (1.0, 1.1, 2).',
      labelNames: ['protocol'],
      registers,
      collect() {
        this.reset();
        for (const [protocol, count] of metrics.byProtocol) this.inc({ protocol }, count);
      },
    });
    this.reloads = new Counter({ name: `${prefix}reloads_total`, help: 'Configuration reloads, by result.', labelNames: ['result'], registers });
    this.reloadOk = new Gauge({ name: `${prefix}config_last_reload_successful`, help: '1 when the last configuration reload succeeded (or none was tried), else 0.', registers });
    this.reloadSuccessTime = new Gauge({ name: `${prefix}config_last_reload_success_timestamp_seconds`, help: 'When the configuration in force was loaded (start, or the last successful reload), in Unix seconds.', registers });
    this.reloadOk.set(1);
    this.reloadSuccessTime.set(Date.now() / 1000);
    registerBackendGauges(this.registry, source, prefix);
    registerCertificateGauge(this.registry, source, prefix);
    registerListenerGauges(this.registry, source, prefix);
    registerDiscoveryMetrics(this.registry, () => source.discoveries?.() ?? [], prefix);
    this.stopProcessMetrics = registerProcessMetrics(this.registry, prefix);

    requestChannel.subscribe(this.onRequest);
    attemptChannel.subscribe(this.onAttempt);
    backendStateChannel.subscribe(this.onBackendState);
    healthCheckChannel.subscribe(this.onHealthCheck);
    ejectionChannel.subscribe(this.onEjection);
    reloadChannel.subscribe(this.onReload);
  }

  /** Labelled children made so far: they are cached, so this stays within the label set's bounds. */
  get cachedChildren(): number {
    return this.children;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  json(): Promise<unknown[]> {
    return this.registry.getMetricsAsJSON();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    requestChannel.unsubscribe(this.onRequest);
    attemptChannel.unsubscribe(this.onAttempt);
    backendStateChannel.unsubscribe(this.onBackendState);
    healthCheckChannel.unsubscribe(this.onHealthCheck);
    ejectionChannel.unsubscribe(this.onEjection);
    reloadChannel.unsubscribe(this.onReload);
    this.stopProcessMetrics();
  }

  // Subscribers are fields (bound once) so subscribe/unsubscribe get the same function.
  private readonly onRequest = (message: unknown): void => {
    const event = message as RequestEvent;
    const series = event.backend === null ? this.upstreamSeries(event.upstream) : this.backendSeries(event.backend);
    const method = methodIndex(event.method);
    const codeClass = codeClassIndex(event.status);
    const slot = method * codeClassLabels.length + codeClass;
    if (series.requests[slot] === 0) this.children++;
    series.requests[slot] = (series.requests[slot] as number) + 1;
    this.children += this.durations.observe(event.upstream, event.durationMs);
    const protocol = event.httpVersion;
    this.byProtocol.set(protocol, (this.byProtocol.get(protocol) ?? 0) + 1);
  };

  private readonly onAttempt = (message: unknown): void => {
    const event = message as AttemptEvent;
    const series = this.backendSeries(event.backend);
    const slot = outcomeIndex(event.outcome);
    if (series.attempts[slot] === 0) this.children++;
    series.attempts[slot] = (series.attempts[slot] as number) + 1;
    if (event.retried) {
      if (series.retries === 0) this.children++;
      series.retries++;
    }
  };

  private readonly onBackendState = (message: unknown): void => {
    const event = message as BackendStateEvent;
    const series = this.backendSeries(event.backend);
    if (series.transitions === undefined) {
      series.transitions = [this.transitions.labels(series.upstream, series.backend, 'up'), this.transitions.labels(series.upstream, series.backend, 'down')];
      this.children += 2;
    }
    series.transitions[event.available ? 0 : 1].inc();
  };

  private readonly onHealthCheck = (message: unknown): void => {
    const event = message as HealthCheckEvent;
    const series = this.backendSeries(event.backend);
    if (series.checks === undefined) {
      series.checks = [this.checks.labels(series.upstream, series.backend, 'pass'), this.checks.labels(series.upstream, series.backend, 'fail')];
      this.children += 2;
    }
    series.checks[event.ok ? 0 : 1].inc();
  };

  private readonly onEjection = (message: unknown): void => {
    const event = message as EjectionEvent;
    if (!event.ejected) return;
    const series = this.backendSeries(event.backend);
    if (series.ejections === undefined) {
      series.ejections = this.ejections.labels(series.upstream, series.backend);
      this.children++;
    }
    series.ejections.inc();
  };

  private readonly onReload = (message: unknown): void => {
    const event = message as ReloadEvent;
    this.reloads.inc({ result: event.ok ? 'ok' : 'fail' });
    this.reloadOk.set(event.ok ? 1 : 0);
    if (event.ok) this.reloadSuccessTime.set(Date.now() / 1000);
  };

  private backendSeries(backend: EventBackend): Series {
    let series = this.byBackend.get(backend);
    if (series === undefined) {
      series = newSeries(backend.upstream, backend.url);
      this.byBackend.set(backend, series);
      this.allSeries.push(series);
    }
    return series;
  }

  private upstreamSeries(upstream: string): Series {
    let series = this.byUpstream.get(upstream);
    if (series === undefined) {
      series = newSeries(upstream === '' ? none : upstream, none);
      this.byUpstream.set(upstream, series);
      this.allSeries.push(series);
    }
    return series;
  }
}

function newSeries(upstream: string, backend: string): Series {
  return {
    upstream,
    backend,
    requests: new Float64Array(requestSlots),
    attempts: new Float64Array(attemptOutcomeLabels.length),
    retries: 0,
    checks: undefined,
    transitions: undefined,
    ejections: undefined,
  };
}

/**
 * What the primary of several workers reports alone (docs/workers.md): backend state, health
 * checks, reloads and certificates. Summed over workers they would count once per process.
 */
const primaryOnly = ['backend_up', 'backend_down_reasons', 'health_checks_total', 'backend_state_changes_total', 'reloads_total', 'config_last_reload_successful', 'config_last_reload_success_timestamp_seconds', 'tls_certificate_expiry_timestamp_seconds'];

/** Creates the metrics of one Switchyard; `close()` it with the Switchyard. A worker's leave out what the primary reports. */
export function createMetrics(source: MetricsSource, options: { readonly scope?: 'all' | 'worker' } = {}): Metrics {
  const metrics = new SwitchyardMetrics(source);
  if (options.scope === 'worker') for (const name of primaryOnly) metrics.registry.removeSingleMetric(prefix + name);
  return metrics;
}
