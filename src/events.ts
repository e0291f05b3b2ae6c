import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Typed diagnostics channels. Observers (access log, metrics, tests) subscribe; the request path
 * only builds and publishes an event when someone listens (`hasSubscribers`), so an unobserved
 * event costs nothing.
 */

/**
 * A backend as an event names it: the fields observers read. upstream/backend.ts's Backend has
 * them; events sit below every layer that publishes them, so they do not import it.
 */
export interface EventBackend {
  /** Normalised URL, e.g. `http://10.0.0.1:8080/base`. */
  readonly url: string;
  /** Name of the upstream the backend belongs to. */
  readonly upstream: string;
}

export interface BackendStateEvent {
  readonly backend: EventBackend;
  readonly available: boolean;
  /** Which down reason changed. */
  readonly reason: string;
}

/** One finished attempt of one request against one backend. */
export interface AttemptEvent {
  readonly backend: EventBackend;
  readonly method: string;
  /** `response`, `connect`, `reset`, `timeout`, `protocol` or `aborted` */
  readonly outcome: string;
  /** The backend's status for `response`, else 0. */
  readonly status: number;
  /** Time from dispatch to the end of the attempt. */
  readonly durationMs: number;
  /** True when another attempt follows (same or next backend). */
  readonly retried: boolean;
}

/** One finished client request: answered, cut, or abandoned by the client. */
export interface RequestEvent {
  /** Upstream that served it; '' when none did (no route, refused before routing). */
  readonly upstream: string;
  /** Backend of the last attempt; null when no attempt was made. */
  readonly backend: EventBackend | null;
  readonly method: string;
  /** Host header as the client sent it ('' when absent). */
  readonly host: string;
  /** Request target path and query, as forwarded (for access logs only, never a metric label). */
  readonly path: string;
  /** Status sent to the client; 0 when none was (the client left first). */
  readonly status: number;
  /** From the request's arrival to the end of the response. */
  readonly durationMs: number;
  /** Response body bytes written to the client. */
  readonly bytesSent: number;
  /** Attempts made against backends. */
  readonly attempts: number;
  readonly clientIp: string;
  /** The HTTP version the client spoke: `1.0`, `1.1` or `2`. */
  readonly httpVersion: string;
  /**
   * `ok` (a backend's response relayed whole), `error` (we answered with an error status),
   * `cut` (the response began, with `status`, and was cut short), `aborted` (the client left).
   */
  readonly outcome: 'ok' | 'error' | 'cut' | 'aborted';
}

export interface HealthCheckEvent {
  readonly backend: EventBackend;
  readonly ok: boolean;
  readonly durationMs: number;
  /** Why it failed; '' when it passed. */
  readonly error: string;
}

export interface ReloadEvent {
  readonly ok: boolean;
  /** `signal` (SIGHUP), `api` (POST /api/reload), `file` (file watch) or `library`. */
  readonly source: string;
  /** Digest of the config in force after the attempt. */
  readonly digest: string;
  /** Why it failed; '' on success. */
  readonly error: string;
}

/** Passive outlier detection took a backend out (`ejected`) or put it back. */
export interface EjectionEvent {
  readonly backend: EventBackend;
  readonly ejected: boolean;
  /**
   * Ejected: what failed in a row, `connect`, `timeout`, `reset`, `protocol`, `failure` (mixed) or
   * `5xx`. Returning: '' when its time was up, `health-check` when a passing check ended it.
   */
  readonly reason: string;
  /** How long this ejection lasts; 0 when returning. */
  readonly durationMs: number;
}

export const backendStateChannel = diagnosticsChannel.channel('switchyard:backend:state');
export const attemptChannel = diagnosticsChannel.channel('switchyard:attempt');
export const requestChannel = diagnosticsChannel.channel('switchyard:request');
export const healthCheckChannel = diagnosticsChannel.channel('switchyard:health-check');
export const reloadChannel = diagnosticsChannel.channel('switchyard:reload');
export const ejectionChannel = diagnosticsChannel.channel('switchyard:ejection');

export function publishBackendState(event: BackendStateEvent): void {
  if (backendStateChannel.hasSubscribers) backendStateChannel.publish(event);
}

export function publishHealthCheck(event: HealthCheckEvent): void {
  if (healthCheckChannel.hasSubscribers) healthCheckChannel.publish(event);
}

export function publishReload(event: ReloadEvent): void {
  if (reloadChannel.hasSubscribers) reloadChannel.publish(event);
}

export function publishEjection(event: EjectionEvent): void {
  if (ejectionChannel.hasSubscribers) ejectionChannel.publish(event);
}
