import type { AddressInfo } from 'node:net';
import { balancers } from './balancer/index.js';
import { ConfigError } from './errors.js';
import { ActiveHealthChecker } from './health/active.js';
import { createLogger, type Logger, type LogOptions } from './log.js';
import type { ProxyContext } from './proxy/handler.js';
import { defaultRetryOptions, type RetryOptions } from './proxy/retry.js';
import { Listener } from './server/listener.js';
import { downstreamLimits, type DownstreamOptions } from './server/limits.js';
import { trustedProxiesFrom } from './proxy/trusted.js';
import type { StickyOptions } from './balancer/sticky.js';
import type { HashKeySpec } from './proxy/request-keys.js';
import { Upstream, type BackendSpec } from './upstream/upstream.js';

export { ConfigError, SwitchyardError, ErrorCodes } from './errors.js';
export { DownReason, type Backend } from './upstream/backend.js';
export type { Upstream } from './upstream/upstream.js';
export type { Balancer, PickContext } from './balancer/index.js';
export type { StickyOptions } from './balancer/sticky.js';
export type { HashKeySpec } from './proxy/request-keys.js';
export type { RetryOptions } from './proxy/retry.js';
export type { Logger, LogOptions } from './log.js';

export const version = '0.1.0';

/** Options of `start()`; the CLI flags map onto these one to one. */
export interface StartOptions extends DownstreamOptions {
  /** Backend URLs (`http://host:port/base`), or `{ url, weight }` objects. Required. */
  readonly backends: readonly (string | BackendSpec)[];
  /** Port to listen on. Default 3030; 0 picks a free port. */
  readonly port?: number;
  /** Address to bind. Default: every interface. */
  readonly host?: string;
  /**
   * Balancing algorithm: `round-robin` (default), `weighted-round-robin`, `least-conn`, `p2c`,
   * `ewma`, `random`, `ip-hash`, `ring-hash` or `maglev`. See README, "Balancing algorithms".
   */
  readonly balancer?: string;
  /** Where `ring-hash` and `maglev` take their key: client address (default), a header, a cookie or the path. */
  readonly hashKey?: HashKeySpec;
  /** Cookie-based session affinity on top of the balancer. Default: off. */
  readonly sticky?: StickyOptions;
  /** A backend that comes up ramps its weight from 10% to 100% over this long. Default 0: no ramp. */
  readonly slowStartMs?: number;
  /** Attempts one backend may have in flight; at the limit it is skipped. Default: no limit. */
  readonly maxInFlight?: number;
  /** `ewma`: time for an old latency sample's weight to fall to 1/e. Default 10 s. */
  readonly ewmaDecayMs?: number;
  /** Time between active TCP health checks. Default 20 s. */
  readonly healthIntervalMs?: number;
  /** A health check that has not connected by then fails. Default 2 s. */
  readonly healthTimeoutMs?: number;
  /** Retry rules; see RetryOptions. */
  readonly retry?: Partial<RetryOptions>;
  /** Time to establish a connection to a backend. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Time a backend may take to send response headers, and the longest pause inside a body. Default 60 s. */
  readonly upstreamTimeoutMs?: number;
  /** Idle pooled backend connections close after this long (or the backend's shorter Keep-Alive hint). Default 4 s. */
  readonly upstreamKeepAliveMs?: number;
  /** Idle client keep-alive connections close after this long. Default 60 s. */
  readonly clientKeepAliveMs?: number;
  /** Time a client has to send its request headers. Default 30 s. */
  readonly clientHeadersTimeoutMs?: number;
  /**
   * Connections accepted per event-loop turn at most. Node 20's libuv accepts one per turn and
   * listening socket, so bursts of new connections queue for seconds under load; this many
   * descriptors on the socket lift that limit. Default 128; 1 turns it off.
   */
  readonly acceptBatch?: number;
  /** On close, in-flight requests get this long to finish. Default 10 s. */
  readonly gracePeriodMs?: number;
  /** Forward the client's Host header (default) or send the backend's host:port. */
  readonly preserveHost?: boolean;
  /** Logging: options for the built-in pino logger, or a logger of your own. */
  readonly log?: LogOptions | Logger;
}

export interface Switchyard {
  /** Where the proxy listens. */
  readonly address: AddressInfo;
  /** `http://host:port` for the listener, with loopback standing in for a wildcard address. */
  readonly url: string;
  readonly upstream: Upstream;
  readonly logger: Logger;
  /** Runs one round of active health checks now. */
  checkHealth(): Promise<void>;
  /** Graceful stop: no new connections, in-flight requests finish (up to the grace period). */
  close(): Promise<void>;
}

function isLogger(value: LogOptions | Logger | undefined): value is Logger {
  return value !== undefined && typeof (value as Logger).info === 'function';
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${what} must be a positive number of milliseconds`);
  return value;
}

function wholeNumber(value: number, min: number, what: string): void {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${what} must be a whole number of at least ${min}`);
}

/** Starts a load balancer. Resolves once it listens and the first health check round is done. */
export async function start(options: StartOptions): Promise<Switchyard> {
  const logger = isLogger(options.log) ? options.log : createLogger(options.log);
  const port = options.port ?? 3030;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`port ${port} is not a port number (0-65535)`);
  const balancer = options.balancer ?? 'round-robin';
  if (balancers[balancer] === undefined) {
    throw new ConfigError(`unknown balancer "${balancer}" (known: ${Object.keys(balancers).join(', ')})`);
  }
  const retry: RetryOptions = { ...defaultRetryOptions, ...options.retry };
  wholeNumber(retry.retriesPerBackend, 0, 'retry.retriesPerBackend');
  wholeNumber(retry.maxBackends, 1, 'retry.maxBackends');
  wholeNumber(retry.retryDelayMs, 0, 'retry.retryDelayMs');
  wholeNumber(retry.replayBufferBytes, 0, 'retry.replayBufferBytes');
  // Every option is checked before anything is opened, so a bad one leaves nothing behind.
  const upstreamTimeoutMs = positive(options.upstreamTimeoutMs, 60_000, 'upstreamTimeoutMs');
  const pool = {
    connectTimeoutMs: positive(options.connectTimeoutMs, 5000, 'connectTimeoutMs'),
    headersTimeoutMs: upstreamTimeoutMs,
    bodyTimeoutMs: upstreamTimeoutMs,
    keepAliveTimeoutMs: positive(options.upstreamKeepAliveMs, 4000, 'upstreamKeepAliveMs'),
  };
  const listenerOptions = {
    port,
    host: options.host,
    keepAliveTimeoutMs: positive(options.clientKeepAliveMs, 60_000, 'clientKeepAliveMs'),
    headersTimeoutMs: positive(options.clientHeadersTimeoutMs, 30_000, 'clientHeadersTimeoutMs'),
    backlog: 4096,
    acceptBatch: Math.floor(positive(options.acceptBatch, 128, 'acceptBatch')),
  };
  const healthOptions = {
    intervalMs: positive(options.healthIntervalMs, 20_000, 'healthIntervalMs'),
    timeoutMs: positive(options.healthTimeoutMs, 2000, 'healthTimeoutMs'),
  };
  const gracePeriodMs = positive(options.gracePeriodMs, 10_000, 'gracePeriodMs');
  const limits = downstreamLimits(options);
  const trusted = trustedProxiesFrom(options.trustedProxies);
  const backendSpecs = options.backends.map((b) => (typeof b === 'string' ? { url: b, weight: 1 } : b));

  const upstream = new Upstream({
    name: 'default',
    backends: backendSpecs,
    balancer,
    retry,
    pool,
    ...(options.hashKey === undefined ? {} : { hashKey: options.hashKey }),
    ...(options.sticky === undefined ? {} : { sticky: options.sticky }),
    ...(options.slowStartMs === undefined ? {} : { slowStartMs: options.slowStartMs }),
    ...(options.maxInFlight === undefined ? {} : { maxInFlight: options.maxInFlight }),
    ...(options.ewmaDecayMs === undefined ? {} : { ewmaDecayMs: options.ewmaDecayMs }),
  });
  for (const backend of upstream.backends) logger.info({ backend: backend.url }, `Configured server: ${backend.url}`);

  const viaName = 'switchyard';
  const ctx: ProxyContext = {
    upstream,
    logger,
    forwarding: { preserveHost: options.preserveHost ?? true, viaName, via11: `1.1 ${viaName}`, trusted },
    limits,
    responseVia: `1.1 ${viaName}`,
    proto: 'http',
    active: 0,
    closing: false,
    onIdle: null,
  };
  const listener = new Listener(ctx, listenerOptions);
  const health = new ActiveHealthChecker(upstream.backends, healthOptions, logger);

  let address: AddressInfo;
  try {
    address = await listener.listen();
  } catch (err) {
    await upstream.close();
    const code = (err as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new ConfigError(`port ${port} is already in use`, { cause: err });
    if (code === 'EACCES') throw new ConfigError(`no permission to listen on port ${port}`, { cause: err });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new ConfigError(`cannot listen on address ${options.host}`, { cause: err });
    throw err;
  }
  const shownHost = options.host === undefined || options.host === '' ? '' : options.host;
  logger.info({ address: address.address, port: address.port }, `Load Balancer started at ${shownHost}:${address.port}`);
  await health.start();

  const urlHost = address.family === 'IPv6' ? (address.address === '::' ? '127.0.0.1' : `[${address.address}]`) : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  let closing: Promise<void> | null = null;
  return {
    address,
    url: `http://${urlHost}:${address.port}`,
    upstream,
    logger,
    checkHealth: () => health.round(),
    close() {
      closing ??= (async () => {
        health.stop();
        await listener.close(gracePeriodMs);
        await upstream.close();
      })();
      return closing;
    },
  };
}
