import type { Backend } from '../upstream/backend.js';

/**
 * A backend's live figures in one worker process. With several workers the primary asks each for
 * them and sums them into the admin API's views; its own backends hold only the down reasons.
 */
export interface BackendFigures {
  readonly upstream: string;
  readonly url: string;
  readonly inFlight: number;
  readonly requestsTotal: number;
  readonly failuresTotal: number;
  /** Responses by status class, index 1 (1xx) to 5 (5xx). */
  readonly responses: readonly number[];
  readonly tunnelsOpen: number;
  readonly tunnelsTotal: number;
  readonly tunnelBytesIn: number;
  readonly tunnelBytesOut: number;
  /** Recent latency quantiles of this worker: the merged view shows the highest. */
  readonly p50: number;
  readonly p99: number;
}

export function figuresOf(backend: Backend): BackendFigures {
  return {
    upstream: backend.upstream,
    url: backend.url,
    inFlight: backend.inFlight,
    requestsTotal: backend.requestsTotal,
    failuresTotal: backend.failuresTotal,
    responses: Array.from(backend.responsesByClass),
    tunnelsOpen: backend.tunnels,
    tunnelsTotal: backend.tunnelsTotal,
    tunnelBytesIn: backend.tunnelBytesIn,
    tunnelBytesOut: backend.tunnelBytesOut,
    p50: backend.recentLatency.quantile(0.5),
    p99: backend.recentLatency.quantile(0.99),
  };
}

/** A listener's WebSocket tunnel figures in one worker (`listener` is `host:port`, as Runtime.listenerTunnels gives it). */
export interface ListenerTunnelFigures {
  readonly listener: string;
  readonly tunnels: { readonly open: number; readonly total: number; readonly bytesIn: number; readonly bytesOut: number };
}

/** Sums the listeners' tunnel figures of every worker, by listener (workers share each listener's socket). */
export function sumListenerTunnels(perWorker: readonly (readonly ListenerTunnelFigures[])[]): Map<string, ListenerTunnelFigures['tunnels']> {
  const sums = new Map<string, ListenerTunnelFigures['tunnels']>();
  for (const list of perWorker) {
    for (const { listener, tunnels: t } of list) {
      const s = sums.get(listener);
      sums.set(listener, s === undefined ? { ...t } : { open: s.open + t.open, total: s.total + t.total, bytesIn: s.bytesIn + t.bytesIn, bytesOut: s.bytesOut + t.bytesOut });
    }
  }
  return sums;
}

/** `host:port` of a listener address, IPv6 in brackets (the label Runtime.listenerTunnels uses). */
export const listenerLabel = (a: { readonly address: string; readonly port: number }): string => (a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);

const keyOf = (f: { readonly upstream: string; readonly url: string }): string => `${f.upstream}\n${f.url}`;

/** Sums the figures of every worker, by backend. */
export function sumFigures(perWorker: readonly (readonly BackendFigures[])[]): Map<string, BackendFigures> {
  const sums = new Map<string, BackendFigures>();
  for (const list of perWorker) {
    for (const f of list) {
      const s = sums.get(keyOf(f));
      sums.set(
        keyOf(f),
        s === undefined
          ? f
          : {
              upstream: f.upstream,
              url: f.url,
              inFlight: s.inFlight + f.inFlight,
              requestsTotal: s.requestsTotal + f.requestsTotal,
              failuresTotal: s.failuresTotal + f.failuresTotal,
              responses: s.responses.map((n, i) => n + (f.responses[i] ?? 0)),
              tunnelsOpen: s.tunnelsOpen + f.tunnelsOpen,
              tunnelsTotal: s.tunnelsTotal + f.tunnelsTotal,
              tunnelBytesIn: s.tunnelBytesIn + f.tunnelBytesIn,
              tunnelBytesOut: s.tunnelBytesOut + f.tunnelBytesOut,
              p50: Math.max(s.p50, f.p50),
              p99: Math.max(s.p99, f.p99),
            },
      );
    }
  }
  return sums;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/** A backend view (api.ts) with the workers' summed figures in place of the primary's zeros. */
export function withFigures<V extends { readonly url: string }>(view: V, upstream: string, sums: ReadonlyMap<string, BackendFigures>): V {
  const f = sums.get(keyOf({ upstream, url: view.url }));
  if (f === undefined) return view;
  const r = f.responses;
  return {
    ...view,
    inFlight: f.inFlight,
    requestsTotal: f.requestsTotal,
    failuresTotal: f.failuresTotal,
    tunnels: { open: f.tunnelsOpen, total: f.tunnelsTotal, bytesIn: f.tunnelBytesIn, bytesOut: f.tunnelBytesOut },
    responses: { '1xx': r[1] ?? 0, '2xx': r[2] ?? 0, '3xx': r[3] ?? 0, '4xx': r[4] ?? 0, '5xx': r[5] ?? 0 },
    latencyMs: { p50: round(f.p50), p99: round(f.p99) },
  };
}
