import { balancers } from './balancer/registry.js';
import type { Random } from './clock.js';
import type { StickyOptions } from './balancer/sticky.js';
import { configProblems } from './config/load.js';
import { balancerNames, configErrors, configSchema, didYouMean, type BalancerName, type Config, type ConfigInput } from './config/schema.js';
import { ConfigError } from './errors.js';
import type { Logger, LogOptions } from './log.js';
import type { HashKeySpec } from './upstream/hash-key.js';
import { defaultRetryOptions, type RetryOptions } from './upstream/retry-options.js';
import type { DownstreamOptions } from './server/limits.js';
import type { BackendTlsConfig } from './upstream/tls.js';
import type { UpstreamProtocol } from './upstream/protocol.js';
import type { ListenerTlsConfig } from './server/tls-certificates.js';
import type { BackendSpec } from './upstream/upstream.js';
import type { DiscoveryConfigInput } from './config/discovery-schema.js';

/** Admin listener settings; see docs/observability.md. */
export interface AdminOptions {
  /** Address to bind. Default 127.0.0.1; anything else requires a token. */
  readonly host?: string;
  /** Port. Default 9901; 0 picks a free one. */
  readonly port?: number;
  /** Bearer token the API requires. Default: $SWITCHYARD_ADMIN_TOKEN, else none (loopback only). */
  readonly token?: string;
}

/** Options of `start()`; the CLI flags map onto these one to one. */
export interface StartOptions extends DownstreamOptions {
  /** Backend URLs (`http://host:port/base`), or `{ url, weight }` objects. Required unless `discover` is given. */
  readonly backends?: readonly (string | BackendSpec)[];
  /** Find the backends with a discovery source instead (docs/discovery.md): `{ dns }`, `{ kubernetes }` or `{ consul }`. */
  readonly discover?: DiscoveryConfigInput;
  /** Port to listen on. Default 3030; 0 picks a free port. */
  readonly port?: number;
  /** Address to bind. Default: every interface. */
  readonly host?: string;
  /**
   * Balancing algorithm: `round-robin` (default), `weighted-round-robin`, `least-conn`, `p2c`,
   * `ewma`, `random`, `ip-hash`, `ring-hash` or `maglev`. See docs/balancing.md.
   */
  readonly balancer?: BalancerName;
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
  /**
   * Check health with `GET path` (HTTP, any 2xx/3xx passes, rise 2, fall 3) instead of a TCP
   * connect. Default: TCP. Config files offer every HTTP check setting.
   */
  readonly healthPath?: string;
  /** Retry rules; see RetryOptions. */
  readonly retry?: Partial<RetryOptions>;
  /** Time to establish a connection to a backend. Default 5 s. */
  readonly connectTimeoutMs?: number;
  /** Time a backend may take to send response headers, and the longest pause inside a body. Default 60 s. */
  readonly upstreamTimeoutMs?: number;
  /** Idle pooled backend connections close after this long (or the backend's shorter Keep-Alive hint). Default 4 s. */
  readonly upstreamKeepAliveMs?: number;
  /** A WebSocket tunnel idle this long is closed. Default 1 h. */
  readonly tunnelIdleTimeoutMs?: number;
  /** Close a backend's tunnels when it is marked down. Default: off. */
  readonly closeTunnelsOnDown?: boolean;
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
  /** A backend response head larger than this is a protocol error (502, not retried). Default 16 KiB. */
  readonly maxResponseHeaderBytes?: number;
  /**
   * TLS towards `https://` backends (file paths, as the config file's upstream `tls`): `ca`,
   * `servername`, `cert` + `key` (mTLS), `insecureSkipVerify`. Default: verified against the system roots.
   */
  readonly backendTls?: BackendTlsConfig;
  /** `http1` (default), `h2` (HTTP/2 over TLS by ALPN) or `h2c` (HTTP/2 over cleartext); see docs/upstream-protocols.md. */
  readonly backendProtocol?: UpstreamProtocol;
  /**
   * Terminate TLS (HTTPS): PEM `{ cert, key }` files, each serving its subjectAltName names by
   * SNI, the first also clients without SNI; `minVersion` defaults to TLSv1.2. Default: cleartext.
   */
  readonly tls?: { readonly certificates: ListenerTlsConfig['certificates']; readonly minVersion?: ListenerTlsConfig['minVersion'] };
  /** With `tls`: offer HTTP/2 by ALPN (default true); false offers HTTP/1.1 only. */
  readonly http2?: boolean;
  /** Without `tls`: also accept HTTP/2 with prior knowledge (h2c) on the port. Default: off. */
  readonly h2c?: boolean;
  /** Admin API, metrics and dashboard listener. Default for the library: off. */
  readonly admin?: false | AdminOptions;
  /** Logging: options for the built-in pino logger, or a logger of your own. */
  readonly log?: LogOptions | Logger;
  /** Write an access-log line per request (at info level). Default: off. */
  readonly accessLog?: boolean;
  /** Random source of balancers and retry jitter. Default Math.random; tests inject a seeded one. */
  readonly random?: Random;
  /** Worker processes (node:cluster), or `auto` for one per core. Default 1: this process serves. See docs/workers.md. */
  readonly workers?: number | 'auto';
}

export function isLogger(value: LogOptions | Logger | undefined): value is Logger {
  return value !== undefined && typeof (value as Logger).info === 'function';
}

function positive(value: number | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new ConfigError(`${what} must be a positive number of milliseconds`);
  return value;
}

function wholeNumber(value: number, min: number, what: string): void {
  if (!Number.isInteger(value) || value < min) throw new ConfigError(`${what} must be a whole number of at least ${min}`);
}

/** One line from a schema failure: `path: problem` for the first problem, in the config's terms. */
function schemaError(issues: Parameters<typeof configProblems>[0]): ConfigError {
  const first = configProblems(issues)[0];
  if (first === undefined) return new ConfigError('invalid options');
  // The upstream `tls` section is the backendTls option here, the listener's the tls option.
  const path = first.path.map(String).join('.').replace(/^upstreams\.default\.tls\b/, 'backendTls').replace(/^upstreams\.default\.protocol\b/, 'backendProtocol').replace(/^listeners\.0\.tls\b/, 'tls');
  return new ConfigError(path === '' ? first.message : `${path}: ${first.message.split('\n')[0] ?? ''}`);
}

/** Every start() option, so a misspelt one is refused instead of ignored (the compiler keeps it complete). */
const startOptionNames: Readonly<Record<keyof StartOptions, true>> = {
  backends: true, discover: true, port: true, host: true, balancer: true, hashKey: true, sticky: true, slowStartMs: true, maxInFlight: true,
  ewmaDecayMs: true, healthIntervalMs: true, healthTimeoutMs: true, healthPath: true, retry: true, connectTimeoutMs: true,
  upstreamTimeoutMs: true, upstreamKeepAliveMs: true, tunnelIdleTimeoutMs: true, closeTunnelsOnDown: true, clientKeepAliveMs: true, clientHeadersTimeoutMs: true, acceptBatch: true,
  gracePeriodMs: true, preserveHost: true, admin: true, log: true, accessLog: true, random: true,
  maxHeaderBytes: true, requestTimeoutMs: true, maxConnections: true, maxBodyBytes: true, trustedProxies: true,
  ambiguousPaths: true, maxResponseHeaderBytes: true, backendTls: true, backendProtocol: true, tls: true, http2: true, h2c: true, workers: true,
};

/** Refuses keys start() does not know, naming the closest known one. */
function checkOptionNames(options: object): void {
  const known = Object.keys(startOptionNames);
  for (const key of Object.keys(options)) {
    if (!Object.hasOwn(startOptionNames, key)) throw new ConfigError(`start(): unknown option "${key}"${didYouMean(key, known)}`);
  }
}

/** Drops undefined fields, which the strict schema would otherwise see as given. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The config that start() options mean: one listener and one upstream named `default`. Options
 * are checked first with messages that name the option; the schema then fills every default,
 * so flags, library options and files share one model.
 */
export function configFromStartOptions(options: StartOptions): Config {
  checkOptionNames(options);
  const port = options.port ?? 3030;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`port ${port} is not a port number (0-65535)`);
  const balancer = options.balancer ?? 'round-robin';
  if (balancers[balancer] === undefined) {
    const hint = didYouMean(balancer, balancerNames);
    throw new ConfigError(`unknown balancer "${balancer}"${hint} (known: ${balancerNames.join(', ')})`);
  }
  const retry: RetryOptions = { ...defaultRetryOptions, ...options.retry };
  wholeNumber(retry.retriesPerBackend, 0, 'retry.retriesPerBackend');
  wholeNumber(retry.maxBackends, 1, 'retry.maxBackends');
  wholeNumber(retry.retryDelayMs, 0, 'retry.retryDelayMs');
  wholeNumber(retry.replayBufferBytes, 0, 'retry.replayBufferBytes');
  wholeNumber(retry.maxRetryDelayMs, 0, 'retry.maxRetryDelayMs');
  wholeNumber(retry.perTryTimeoutMs, 0, 'retry.perTryTimeoutMs');
  wholeNumber(retry.tryDurationMs, 0, 'retry.tryDurationMs');
  wholeNumber(retry.budgetMinRetries, 0, 'retry.budgetMinRetries');
  const backends = options.backends?.map((b) => (typeof b === 'string' ? { url: b, weight: 1 } : b));
  if (backends !== undefined && options.discover !== undefined) throw new ConfigError('give backends or discover, not both');
  if (options.discover === undefined && (backends === undefined || backends.length === 0)) throw new ConfigError('no backends given');
  if (options.maxInFlight !== undefined && !(options.maxInFlight >= 1)) throw new ConfigError('maxInFlight must be at least 1');
  if (options.slowStartMs !== undefined && !(options.slowStartMs >= 0 && Number.isFinite(options.slowStartMs))) throw new ConfigError('slowStartMs must be 0 or a positive number of milliseconds');
  const hashKey = options.hashKey === undefined ? undefined : options.hashKey.name === undefined ? options.hashKey.source : `${options.hashKey.source}:${options.hashKey.name}`;
  const sticky = options.sticky;
  const logOptions = isLogger(options.log) ? undefined : options.log;
  const input: ConfigInput = {
    listeners: [
      defined({
        host: options.host,
        port,
        clientKeepAlive: positive(options.clientKeepAliveMs, 'clientKeepAliveMs'),
        clientHeadersTimeout: positive(options.clientHeadersTimeoutMs, 'clientHeadersTimeoutMs'),
        trustedProxies: options.trustedProxies === undefined ? undefined : [...options.trustedProxies],
        maxHeaderSize: options.maxHeaderBytes,
        requestTimeout: options.requestTimeoutMs,
        maxConnections: options.maxConnections,
        maxBodySize: options.maxBodyBytes,
        ambiguousPaths: options.ambiguousPaths,
        tls: options.tls === undefined ? undefined : { certificates: options.tls.certificates.map((c) => ({ cert: c.cert, key: c.key })), minVersion: options.tls.minVersion },
        http2: options.http2,
        h2c: options.h2c,
        acceptBatch: options.acceptBatch === undefined ? undefined : Math.min(1024, Math.max(1, Math.floor(positive(options.acceptBatch, 'acceptBatch') as number))),
      }),
    ],
    upstreams: {
      default: defined({
        backends,
        discover: options.discover,
        balancer: balancer as NonNullable<ConfigInput['upstreams'][string]['balancer']>,
        hashKey,
        sticky: sticky === undefined ? undefined : defined({ cookie: sticky.cookie, secret: sticky.secret, ttl: sticky.ttlMs }),
        slowStart: options.slowStartMs,
        maxInFlight: options.maxInFlight,
        ewmaDecay: positive(options.ewmaDecayMs, 'ewmaDecayMs'),
        preserveHost: options.preserveHost,
        closeTunnelsOnDown: options.closeTunnelsOnDown,
        maxResponseHeaderSize: options.maxResponseHeaderBytes,
        tls: options.backendTls === undefined ? undefined : defined({ ...options.backendTls }),
        protocol: options.backendProtocol,
        healthCheck: defined({
          ...(options.healthPath === undefined ? {} : { type: 'http' as const, path: options.healthPath }),
          interval: positive(options.healthIntervalMs, 'healthIntervalMs'),
          timeout: positive(options.healthTimeoutMs, 'healthTimeoutMs'),
        }),
        retry: {
          retriesPerBackend: retry.retriesPerBackend,
          retryDelay: retry.retryDelayMs,
          maxRetryDelay: retry.maxRetryDelayMs,
          maxBackends: retry.maxBackends,
          replayBuffer: retry.replayBufferBytes,
          retryOn: [...retry.retryOn],
          retryStatuses: [...retry.retryStatuses],
          perTryTimeout: retry.perTryTimeoutMs,
          tryDuration: retry.tryDurationMs,
          budget: { minRetries: retry.budgetMinRetries, percent: retry.budgetPercent },
        },
        timeouts: defined({
          connect: positive(options.connectTimeoutMs, 'connectTimeoutMs'),
          upstream: positive(options.upstreamTimeoutMs, 'upstreamTimeoutMs'),
          upstreamKeepAlive: positive(options.upstreamKeepAliveMs, 'upstreamKeepAliveMs'),
          tunnelIdle: positive(options.tunnelIdleTimeoutMs, 'tunnelIdleTimeoutMs'),
        }),
      }),
    },
    log: defined({ level: logOptions?.level, format: logOptions?.format, access: options.accessLog }),
    admin: options.admin === undefined || options.admin === false ? false : defined({ ...options.admin }),
    ...defined({ gracePeriod: positive(options.gracePeriodMs, 'gracePeriodMs'), workers: options.workers }),
  };
  const result = configSchema.safeParse(input, { error: configErrors });
  if (!result.success) throw schemaError(result.error.issues);
  const config = result.data;
  return { ...config, routes: [{ upstream: 'default' }] };
}
