import { Counter, Gauge, Histogram, Registry } from 'prom-client';
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
  type HealthCheckEvent,
  type ReloadEvent,
  type RequestEvent,
} from '../events.js';
import type { Backend } from '../upstream/backend.js';
import { registerBackendGauges } from './backend-gauges.js';
import { registerProcessMetrics } from './process-metrics.js';

/** Where scrape-time gauges read live backend state: the upstreams in force now. */
export interface MetricsSource {
  upstreams(): Iterable<{ readonly name: string; readonly backends: readonly Backend[] }>;
}

/** One Prometheus registry fed by Switchyard's diagnostics channels. */
export interface Metrics {
  /** Content-Type of `text()`: the Prometheus text exposition format 0.0.4. */
  readonly contentType: string;
  text(): Promise<string>;
  /** Stops listening to events and sampling the process; `text()` then reports the final counts. */
  close(): void;
}

const prefix = 'switchyard_';
/** Label value for "no upstream" / "no backend" (a request refused before routing or picking). */
const none = 'none';

/** Method label values: the RFC 9110 section 9 methods plus PATCH; anything else is OTHER. */
export const methodLabels = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'OTHER'] as const;
/** Status class label values by index: 0 means no status was sent, 6 a status outside 100-599. */
export const codeClassLabels = [none, '1xx', '2xx', '3xx', '4xx', '5xx', 'other'] as const;
export const attemptOutcomeLabels = ['response', 'connect', 'reset', 'timeout', 'protocol', 'aborted', 'other'] as const;

const requestSlots = methodLabels.length * codeClassLabels.length;

function methodIndex(method: string): number {
  switch (method) {
    case 'GET': return 0;
    case 'HEAD': return 1;
    case 'POST': return 2;
    case 'PUT': return 3;
    case 'DELETE': return 4;
    case 'PATCH': return 5;
    case 'OPTIONS': return 6;
    case 'TRACE': return 7;
    case 'CONNECT': return 8;
    default: return 9;
  }
}

function codeClassIndex(status: number): number {
  if (status >= 100 && status < 600) return (status / 100) | 0;
  return status === 0 ? 0 : 6;
}

function outcomeIndex(outcome: string): number {
  const i = attemptOutcomeLabels.indexOf(outcome as (typeof attemptOutcomeLabels)[number]);
  return i === -1 ? attemptOutcomeLabels.length - 1 : i;
}

/**
 * Labelled children of one backend (or of the "no backend" requests of one upstream), made on
 * first use so an event only indexes an array; each array's length bounds its label set.
 */
interface Series {
  readonly upstream: string;
  readonly backend: string;
  readonly requests: (Counter.Internal | undefined)[];
  readonly attempts: (Counter.Internal | undefined)[];
  retries: Counter.Internal | undefined;
  checks: [pass: Counter.Internal, fail: Counter.Internal] | undefined;
  transitions: [up: Counter.Internal, down: Counter.Internal] | undefined;
  ejections: Counter.Internal | undefined;
}

/** Prometheus metrics on a registry of its own, so several Switchyards in one process stay apart. */
export class SwitchyardMetrics implements Metrics {
  readonly registry = new Registry();
  readonly contentType: string = this.registry.contentType;
  private readonly requests: Counter<'upstream' | 'backend' | 'method' | 'code_class'>;
  private readonly duration: Histogram<'upstream'>;
  private readonly attempts: Counter<'upstream' | 'backend' | 'outcome'>;
  private readonly retries: Counter<'upstream' | 'backend'>;
  private readonly checks: Counter<'upstream' | 'backend' | 'result'>;
  private readonly ejections: Counter<'upstream' | 'backend'>;
  private readonly transitions: Counter<'upstream' | 'backend' | 'to'>;
  private readonly reloads: Counter<'result'>;
  private readonly reloadOk: Gauge;
  private readonly reloadSuccessTime: Gauge;
  private readonly byBackend = new WeakMap<Backend, Series>();
  /** "No backend" series and duration children, by upstream name (config names, plus '' for none). */
  private readonly byUpstream = new Map<string, Series>();
  private readonly durationByUpstream = new Map<string, Histogram.Internal<'upstream'>>();
  private readonly stopProcessMetrics: () => void;
  private closed = false;
  private children = 0;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    this.requests = new Counter({ name: `${prefix}requests_total`, help: 'Client requests finished, by upstream, last backend tried, method and status class (none: no status was sent).', labelNames: ['upstream', 'backend', 'method', 'code_class'], registers });
    this.duration = new Histogram({ name: `${prefix}request_duration_seconds`, help: 'Time from a request\'s arrival to the end of its response.', labelNames: ['upstream'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.attempts = new Counter({ name: `${prefix}attempts_total`, help: 'Attempts against backends, by outcome (response, connect, reset, timeout, protocol, aborted).', labelNames: ['upstream', 'backend', 'outcome'], registers });
    this.retries = new Counter({ name: `${prefix}retries_total`, help: 'Attempts that were followed by another attempt.', labelNames: ['upstream', 'backend'], registers });
    this.checks = new Counter({ name: `${prefix}health_checks_total`, help: 'Active health checks, by result.', labelNames: ['upstream', 'backend', 'result'], registers });
    this.ejections = new Counter({ name: `${prefix}ejections_total`, help: 'Times outlier detection took a backend out of rotation.', labelNames: ['upstream', 'backend'], registers });
    this.transitions = new Counter({ name: `${prefix}backend_state_changes_total`, help: 'Times the backend went down (first down reason set) or up (last one cleared).', labelNames: ['upstream', 'backend', 'to'], registers });
    this.reloads = new Counter({ name: `${prefix}reloads_total`, help: 'Configuration reloads, by result.', labelNames: ['result'], registers });
    this.reloadOk = new Gauge({ name: `${prefix}config_last_reload_successful`, help: '1 when the last configuration reload succeeded (or none was tried), else 0.', registers });
    this.reloadSuccessTime = new Gauge({ name: `${prefix}config_last_reload_success_timestamp_seconds`, help: 'When the configuration in force was loaded (start, or the last successful reload), in Unix seconds.', registers });
    this.reloadOk.set(1);
    this.reloadSuccessTime.set(Date.now() / 1000);
    registerBackendGauges(this.registry, source, prefix);
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
    let child = series.requests[slot];
    if (child === undefined) {
      child = this.requests.labels(series.upstream, series.backend, methodLabels[method] as string, codeClassLabels[codeClass] as string);
      series.requests[slot] = child;
      this.children++;
    }
    child.inc();
    let duration = this.durationByUpstream.get(event.upstream);
    if (duration === undefined) {
      duration = this.duration.labels(event.upstream === '' ? none : event.upstream);
      this.durationByUpstream.set(event.upstream, duration);
      this.children++;
    }
    // prom-client throws on a non-finite value, and a throwing subscriber would crash the process.
    if (Number.isFinite(event.durationMs)) duration.observe(event.durationMs / 1000);
  };

  private readonly onAttempt = (message: unknown): void => {
    const event = message as AttemptEvent;
    const series = this.backendSeries(event.backend);
    const slot = outcomeIndex(event.outcome);
    let child = series.attempts[slot];
    if (child === undefined) {
      child = this.attempts.labels(series.upstream, series.backend, attemptOutcomeLabels[slot] as string);
      series.attempts[slot] = child;
      this.children++;
    }
    child.inc();
    if (event.retried) {
      if (series.retries === undefined) {
        series.retries = this.retries.labels(series.upstream, series.backend);
        this.children++;
      }
      series.retries.inc();
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

  private backendSeries(backend: Backend): Series {
    let series = this.byBackend.get(backend);
    if (series === undefined) {
      series = newSeries(backend.upstream, backend.url);
      this.byBackend.set(backend, series);
    }
    return series;
  }

  private upstreamSeries(upstream: string): Series {
    let series = this.byUpstream.get(upstream);
    if (series === undefined) {
      series = newSeries(upstream === '' ? none : upstream, none);
      this.byUpstream.set(upstream, series);
    }
    return series;
  }
}

function newSeries(upstream: string, backend: string): Series {
  return {
    upstream,
    backend,
    requests: new Array<Counter.Internal | undefined>(requestSlots).fill(undefined),
    attempts: new Array<Counter.Internal | undefined>(attemptOutcomeLabels.length).fill(undefined),
    retries: undefined,
    checks: undefined,
    transitions: undefined,
    ejections: undefined,
  };
}

/** Creates the metrics of one Switchyard; `close()` it with the Switchyard. */
export function createMetrics(source: MetricsSource): Metrics {
  return new SwitchyardMetrics(source);
}
