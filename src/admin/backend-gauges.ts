import { Counter, Gauge, type Registry } from 'prom-client';
import { DownReason, downReasonNames, type Backend } from '../upstream/backend.js';
import type { DiscoveryMetricsSource } from './discovery-metrics.js';

/** Where scrape-time gauges read live backend state: the upstreams in force now. */
export interface MetricsSource {
  upstreams(): Iterable<{ readonly name: string; readonly backends: readonly Backend[] }>;
  /** HTTPS listeners' certificates in use; absent: none. */
  certificates?(): Iterable<{ readonly port: number; readonly cert: string; readonly expiresAtMs: number }>;
  /** Each listener (`host:port`) and its WebSocket tunnel figures; absent: none. */
  listenerTunnels?(): Iterable<{ readonly listener: string; readonly tunnels: ListenerTunnels }>;
  /** Upstreams' discovery sources; absent: none. */
  discoveries?(): Iterable<DiscoveryMetricsSource>;
}

export interface ListenerTunnels {
  readonly open: number;
  readonly total: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
}

const downReasons = Object.values(DownReason).map((bit) => [bit, downReasonNames(bit)[0] ?? String(bit)] as const);

/**
 * Gauges read from the live backends at scrape time: nothing per request, and a backend removed
 * from `source` drops out (each gauge is reset before it is filled).
 */
export function registerBackendGauges(registry: Registry, source: MetricsSource, prefix: string): void {
  const registers = [registry];
  new Gauge({
    name: `${prefix}backend_in_flight`,
    help: 'Attempts in flight to the backend.',
    labelNames: ['upstream', 'backend'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) for (const b of upstream.backends) this.set({ upstream: upstream.name, backend: b.url }, b.inFlight);
    },
  });
  new Gauge({
    name: `${prefix}backend_tunnels_open`,
    help: 'WebSocket tunnels open to the backend.',
    labelNames: ['upstream', 'backend'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) for (const b of upstream.backends) this.set({ upstream: upstream.name, backend: b.url }, b.tunnels);
    },
  });
  new Counter({
    name: `${prefix}backend_tunnels_total`,
    help: 'WebSocket tunnels opened to the backend (101 relayed).',
    labelNames: ['upstream', 'backend'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) for (const b of upstream.backends) this.inc({ upstream: upstream.name, backend: b.url }, b.tunnelsTotal);
    },
  });
  new Counter({
    name: `${prefix}backend_tunnel_bytes_total`,
    help: 'Bytes through WebSocket tunnels: direction "in" is client to backend, "out" backend to client.',
    labelNames: ['upstream', 'backend', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) {
        for (const b of upstream.backends) {
          this.inc({ upstream: upstream.name, backend: b.url, direction: 'in' }, b.tunnelBytesIn);
          this.inc({ upstream: upstream.name, backend: b.url, direction: 'out' }, b.tunnelBytesOut);
        }
      }
    },
  });
  new Gauge({
    name: `${prefix}backend_up`,
    help: '1 when no down reason is set on the backend, else 0 (it may still be skipped at its in-flight limit).',
    labelNames: ['upstream', 'backend'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) for (const b of upstream.backends) this.set({ upstream: upstream.name, backend: b.url }, b.downReasons === 0 ? 1 : 0);
    },
  });
  new Gauge({
    name: `${prefix}backend_down_reasons`,
    help: '1 for each reason the backend is down: health-check, failed-attempts, draining, disabled, outlier-ejected.',
    labelNames: ['upstream', 'backend', 'reason'],
    registers,
    collect() {
      this.reset();
      for (const upstream of source.upstreams()) {
        for (const b of upstream.backends) {
          for (const [bit, reason] of downReasons) this.set({ upstream: upstream.name, backend: b.url, reason }, (b.downReasons & bit) === 0 ? 0 : 1);
        }
      }
    },
  });
}

/** Expiry of each certificate in use, read at scrape so a reloaded certificate shows at once. */
export function registerCertificateGauge(registry: Registry, source: MetricsSource, prefix: string): void {
  new Gauge({
    name: `${prefix}tls_certificate_expiry_timestamp_seconds`,
    help: "When the HTTPS listener's certificate expires (notAfter), in Unix seconds.",
    labelNames: ['port', 'cert'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of source.certificates?.() ?? []) this.set({ port: String(c.port), cert: c.cert }, c.expiresAtMs / 1000);
    },
  });
}
