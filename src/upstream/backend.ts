import { ConfigError } from '../errors.js';
import { publishBackendState } from '../events.js';
import type { BackendDispatcher } from './dispatcher.js';
import type { EjectionState } from './ejection-state.js';
import { H1Pool } from './h1/pool.js';
import { LatencyHistogram, RecentLatency } from './latency.js';
import { H2Pool } from './h2/pool.js';
import type { UpstreamProtocol } from './protocol.js';
import { backendTlsConnectOptions, defaultBackendTls, type BackendTlsConnectOptions, type BackendTlsOptions } from './tls.js';

/**
 * Why a backend is out of rotation. Each observer sets and clears its own bit; the backend is
 * available only when no bit is set.
 */
export const DownReason = {
  /** The active health check failed. */
  healthCheck: 1,
  /** Requests failed to connect through all their retries (the simple design's "mark down"). */
  failedAttempts: 2,
  /** Being removed: finishes what it has, takes nothing new. */
  draining: 4,
  /** Disabled by an operator. */
  disabled: 8,
  /** Taken out for a while by passive outlier detection (consecutive failed attempts). */
  ejected: 16,
  /** Listed by discovery as terminating (a Kubernetes endpoint going away): drains while it stays listed. */
  terminating: 32,
} as const;
export type DownReason = (typeof DownReason)[keyof typeof DownReason];

const reasonNames: Readonly<Record<number, string>> = {
  1: 'health-check',
  2: 'failed-attempts',
  4: 'draining',
  8: 'disabled',
  16: 'outlier-ejected',
  32: 'terminating',
};

/** The reasons that say the backend is unhealthy, which panic mode ignores; draining and disabled stay. */
export const unhealthyReasons = DownReason.healthCheck | DownReason.failedAttempts | DownReason.ejected;

export function downReasonNames(bits: number): string[] {
  const names: string[] = [];
  for (let bit = 1; bit <= DownReason.terminating; bit <<= 1) if ((bits & bit) !== 0) names.push(reasonNames[bit] ?? String(bit));
  return names;
}

export interface BackendTarget {
  /** Normalised URL as given, e.g. `http://10.0.0.1:8080/base`. */
  readonly url: string;
  /** scheme://host:port, the connection pool's key. */
  readonly origin: string;
  readonly hostname: string;
  /** The port to connect to, the scheme's default (80/443) when the URL has none. */
  readonly port: number;
  /** Path prefix for every request, without a trailing slash; '' for none. */
  readonly basePath: string;
}

/** Parses and checks a backend URL; a ConfigError names the problem. */
export function parseBackendUrl(text: string): BackendTarget {
  // `host:port` or `name.domain` without a scheme: name the likely fix.
  if (!text.includes('://') && URL.canParse(`http://${text}`) && /^(?:[\w-]+(?:\.[\w-]+)*:\d+|[\w-]+(?:\.[\w-]+)+|\[[\da-f:.]+\](?::\d+)?)(?:\/|$)/i.test(text)) {
    throw new ConfigError(`backend "${text}" has no scheme (did you mean http://${text}?)`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError(`backend "${text}" is not a URL (expected http://host[:port][/path])`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(`backend "${text}" must be an http:// or https:// URL`);
  }
  if (url.hostname === '') throw new ConfigError(`backend "${text}" has no host`);
  if (url.username !== '' || url.password !== '') throw new ConfigError(`backend "${text}" must not contain credentials`);
  if (url.search !== '' || url.hash !== '') throw new ConfigError(`backend "${text}" must not contain a query or fragment`);
  const port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
  const basePath = url.pathname.endsWith('/') ? url.pathname.slice(0, -1) : url.pathname;
  const origin = `${url.protocol}//${url.host}`;
  return { url: origin + basePath, origin, hostname: url.hostname.replace(/^\[|\]$/g, ''), port, basePath };
}

/** One finished active health check. `atMs` is on the checker's clock (performance.now() by default). */
export interface HealthCheckResult {
  readonly atMs: number;
  readonly ok: boolean;
  readonly durationMs: number;
  /** Why it failed; '' when it passed. */
  readonly error: string;
}

export interface HealthSample {
  readonly atMs: number;
  readonly ok: boolean;
}

/** Results kept in a backend's health history. */
export const healthHistorySize = 60;

export interface PoolOptions {
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /** Idle pooled sockets are closed after this long, or sooner when the backend's Keep-Alive hint says so. */
  readonly keepAliveTimeoutMs: number;
  /** A response head (status line and fields) larger than this is a protocol error, 502. Default 16 KiB. */
  readonly maxHeaderBytes?: number;
  /** Certificate verification, CA, client certificate and server name for https backends. Default: defaultBackendTls. */
  readonly tls?: BackendTlsOptions;
  /** HTTP/1.1 (default), HTTP/2 over TLS by ALPN, or HTTP/2 over cleartext with prior knowledge. */
  readonly protocol?: UpstreamProtocol;
}

/** Node's and undici's own default for a header block. */
export const defaultMaxResponseHeaderBytes = 16 * 1024;

/**
 * One backend address: its identity, its connection pool and its live state. Live state
 * (down reasons, in-flight count, counters) belongs to the backend and survives config reloads.
 */
export class Backend implements BackendTarget {
  readonly url: string;
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  readonly basePath: string;
  /** Name of the upstream this backend belongs to. */
  readonly upstream: string;
  /** Relative share for weighted balancers; a reload may change it. */
  weight: number;
  /** Attempts this backend may have in flight; at the limit it takes no new ones. A reload may change it. */
  maxInFlight: number;
  readonly pool: BackendDispatcher;
  /** The pool's settings, so a reload can tell whether this backend can be kept as it is. */
  readonly poolOptions: PoolOptions;
  /** tls.connect options of an https backend (verification, CA, client certificate, server name); null for http. */
  readonly tlsConnectOptions: BackendTlsConnectOptions | null;
  readonly protocol: UpstreamProtocol;
  /** HTTP/2 (h2 or h2c): attempts share connections as streams. */
  readonly multiplexed: boolean;

  /** Bit set of DownReason; 0 means up. */
  downReasons = 0;
  /** Down reasons the owning upstream ignores for now: `unhealthyReasons` in panic mode, else 0. */
  ignoredReasons = 0;
  /** Outlier detection's counters and ejection timer; created by the first detector that sees it. */
  ejection: EjectionState | null = null;
  inFlight = 0;
  /** Attempts made (a request with retries counts each one). */
  requestsTotal = 0;
  /** Attempts that failed (connect, reset, timeout, protocol); client hang-ups are not failures. */
  failuresTotal = 0;
  /** WebSocket tunnels open to this backend now (each also counts in inFlight while open). */
  readonly openTunnels = new Set<{ destroy(): void }>();
  /** Tunnels opened (101 relayed) since start. */
  tunnelsTotal = 0;
  /** Bytes through its tunnels: client to backend, and backend to client. */
  tunnelBytesIn = 0;
  tunnelBytesOut = 0;
  /** Responses relayed, by status class: index 1 is 1xx … index 5 is 5xx. */
  readonly responsesByClass = new Float64Array(6);
  /** Time to response headers of answered attempts, since start. */
  readonly latency = new LatencyHistogram();
  /** The same over the last 30-60 s, for the admin API and dashboard. */
  readonly recentLatency = new RecentLatency();
  /** When downReasons last became 0 (clock ms), for slow start; -Infinity when up from the start. */
  upSinceMs = Number.NEGATIVE_INFINITY;
  /**
   * Called whenever a down reason is set or cleared, before the diagnostics event (published only
   * on down/up transitions). Set by the owning upstream (a plain callback, no allocation).
   */
  onStateChange: ((backend: Backend) => void) | null = null;

  get tunnels(): number {
    return this.openTunnels.size;
  }

  /** Closes both sides of every tunnel open to this backend. */
  closeTunnels(): void {
    for (const tunnel of [...this.openTunnels]) tunnel.destroy();
  }
  /** The latest active health check; null before the first. */
  lastHealthCheck: HealthCheckResult | null = null;
  /** Ring of the last `healthHistorySize` check results; read it in order with healthChecks(). */
  readonly healthHistory: HealthSample[] = [];
  /** Slot of healthHistory the next result overwrites once the ring is full. */
  private healthHistoryNext = 0;

  constructor(target: BackendTarget, weight: number, pool: PoolOptions, maxInFlight = Number.POSITIVE_INFINITY, upstream = 'default') {
    this.url = target.url;
    this.upstream = upstream;
    this.poolOptions = pool;
    this.origin = target.origin;
    this.hostname = target.hostname;
    this.port = target.port;
    this.basePath = target.basePath;
    this.weight = weight;
    this.maxInFlight = maxInFlight;
    const protocol = pool.protocol ?? 'http1';
    this.protocol = protocol;
    this.multiplexed = protocol !== 'http1';
    // HTTP/2 as the scheme allows (a discovered backend may not match the upstream's protocol):
    // https by ALPN, offering h2 and http/1.1 in health checks too; http with prior knowledge.
    const https = target.origin.startsWith('https:');
    const tlsOptions = https ? backendTlsConnectOptions(target.hostname, pool.tls ?? defaultBackendTls, this.multiplexed) : null;
    this.tlsConnectOptions = tlsOptions;
    const http1 = (): BackendDispatcher => http1Pool(target, pool, https ? backendTlsConnectOptions(target.hostname, pool.tls ?? defaultBackendTls) : null);
    this.pool = this.multiplexed
      ? new H2Pool({
          origin: target.origin,
          hostname: target.hostname,
          port: target.port,
          tls: tlsOptions,
          connectTimeoutMs: pool.connectTimeoutMs,
          keepAliveTimeoutMs: pool.keepAliveTimeoutMs,
          maxHeaderBytes: pool.maxHeaderBytes ?? defaultMaxResponseHeaderBytes,
          headersTimeoutMs: pool.headersTimeoutMs,
          bodyTimeoutMs: pool.bodyTimeoutMs,
          http1,
        })
      : http1();
  }

  /** The one eligibility rule every balancer consults: up, and below its in-flight limit. */
  get available(): boolean {
    return (this.downReasons & ~this.ignoredReasons) === 0 && this.inFlight < this.maxInFlight;
  }

  /** In rotation, whatever its in-flight count: no down reason but those the upstream ignores. */
  get up(): boolean {
    return (this.downReasons & ~this.ignoredReasons) === 0;
  }

  markDown(reason: DownReason): void {
    if ((this.downReasons & reason) !== 0) return;
    const was = this.downReasons === 0;
    this.downReasons |= reason;
    if (this.onStateChange !== null) this.onStateChange(this);
    if (!was) return;
    publishBackendState({ backend: this, available: false, reason: reasonNames[reason] ?? String(reason) });
  }

  markUp(reason: DownReason): void {
    if ((this.downReasons & reason) === 0) return;
    this.downReasons &= ~reason;
    if (this.onStateChange !== null) this.onStateChange(this);
    if (this.downReasons !== 0) return;
    publishBackendState({ backend: this, available: true, reason: reasonNames[reason] ?? String(reason) });
  }

  /** Records an active health check result (the checker calls it). */
  recordHealthCheck(result: HealthCheckResult): void {
    this.lastHealthCheck = result;
    const sample = { atMs: result.atMs, ok: result.ok };
    if (this.healthHistory.length < healthHistorySize) this.healthHistory.push(sample);
    else this.healthHistory[this.healthHistoryNext] = sample;
    this.healthHistoryNext = (this.healthHistoryNext + 1) % healthHistorySize;
  }

  /** The kept health check results, oldest first. */
  healthChecks(): HealthSample[] {
    const ring = this.healthHistory;
    if (ring.length < healthHistorySize) return ring.slice();
    return ring.slice(this.healthHistoryNext).concat(ring.slice(0, this.healthHistoryNext));
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Switchyard's HTTP/1.1 client of one backend (upstream/h1), one request per connection at a time. */
function http1Pool(target: BackendTarget, pool: PoolOptions, tlsOptions: BackendTlsConnectOptions | null): BackendDispatcher {
  return new H1Pool({
    origin: target.origin,
    hostname: target.hostname,
    port: target.port,
    tls: tlsOptions,
    connectTimeoutMs: pool.connectTimeoutMs,
    headersTimeoutMs: pool.headersTimeoutMs,
    bodyTimeoutMs: pool.bodyTimeoutMs,
    keepAliveTimeoutMs: pool.keepAliveTimeoutMs,
    keepAliveMaxTimeoutMs: Math.max(pool.keepAliveTimeoutMs, 1000) * 10,
    maxHeaderBytes: pool.maxHeaderBytes ?? defaultMaxResponseHeaderBytes,
  });
}
