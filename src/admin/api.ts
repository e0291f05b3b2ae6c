import type { Runtime } from '../runtime.js';
import { DownReason, downReasonNames, type Backend } from '../upstream/backend.js';
import type { Upstream } from '../upstream/upstream.js';

/** The JSON views and actions of the admin API (docs/observability.md, "Admin API"). */

export type BackendStateName = 'up' | 'down' | 'draining' | 'disabled';

/** An operator's word for a backend's down reasons: disabled and draining win over failures. */
export function stateName(downReasons: number): BackendStateName {
  if ((downReasons & DownReason.disabled) !== 0) return 'disabled';
  if ((downReasons & (DownReason.draining | DownReason.terminating)) !== 0) return 'draining';
  return downReasons === 0 ? 'up' : 'down';
}

/** A backend's id in API paths: its URL, percent-encoded into one path segment. */
export function backendId(backend: Backend): string {
  return encodeURIComponent(backend.url);
}

/** Wall-clock ISO time of a performance.now() timestamp. */
export function isoFromMonotonic(ms: number): string {
  return new Date(Date.now() - (performance.now() - ms)).toISOString();
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

export function backendView(backend: Backend) {
  const c = backend.responsesByClass;
  const last = backend.lastHealthCheck;
  return {
    id: backendId(backend),
    url: backend.url,
    protocol: backend.protocol,
    weight: backend.weight,
    state: stateName(backend.downReasons),
    reasons: downReasonNames(backend.downReasons),
    available: backend.available,
    inFlight: backend.inFlight,
    requestsTotal: backend.requestsTotal,
    failuresTotal: backend.failuresTotal,
    tunnels: { open: backend.tunnels, total: backend.tunnelsTotal, bytesIn: backend.tunnelBytesIn, bytesOut: backend.tunnelBytesOut },
    responses: { '1xx': c[1], '2xx': c[2], '3xx': c[3], '4xx': c[4], '5xx': c[5] },
    // Recent (last 30-60 s) so charts show what the backend does now; lifetime alongside.
    latencyMs: { p50: round(backend.recentLatency.quantile(0.5)), p99: round(backend.recentLatency.quantile(0.99)) },
    lifetimeLatencyMs: { p50: round(backend.latency.quantile(0.5)), p99: round(backend.latency.quantile(0.99)) },
    health: {
      last: last === null ? null : { at: isoFromMonotonic(last.atMs), ok: last.ok, durationMs: round(last.durationMs), error: last.error },
      history: backend.healthChecks().map((result) => ({ at: isoFromMonotonic(result.atMs), ok: result.ok })),
    },
  };
}

/** An upstream and its backends; `discovery` (issue 13) is null for a fixed backend list. */
export function upstreamView(upstream: Upstream, runtime: Runtime) {
  return { name: upstream.name, balancer: upstream.balancerName, discovery: runtime.discoveries.view(upstream.name), backends: upstream.backends.map(backendView) };
}

export function upstreamsView(runtime: Runtime) {
  return { upstreams: [...runtime.snapshot.upstreams.values()].map((upstream) => upstreamView(upstream, runtime)) };
}

export const backendActions = ['drain', 'disable', 'enable'] as const;
export type BackendAction = (typeof backendActions)[number];

/**
 * drain: takes no new requests, finishes what it has (health checks go on);
 * disable: the same, for maintenance; enable: clears both.
 */
export function applyAction(backend: Backend, action: BackendAction): void {
  if (action === 'drain') backend.markDown(DownReason.draining);
  else if (action === 'disable') backend.markDown(DownReason.disabled);
  else {
    backend.markUp(DownReason.draining);
    backend.markUp(DownReason.disabled);
  }
}
