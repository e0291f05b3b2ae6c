import { createHash, randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { systemClock, type Clock, type Random } from './clock.js';
import { listenerSchema, type Config } from './config/schema.js';
import { ConfigError } from './errors.js';
import { publishReload } from './events.js';
import { ActiveHealthChecker } from './health/active.js';
import { resolveHealthOptions } from './health/options.js';
import type { Logger } from './log.js';
import type { ProxyContext } from './proxy/context.js';
import type { ForwardingOptions } from './proxy/headers.js';
import { retryOptionsFromConfig } from './proxy/retry.js';
import { trustedProxiesFrom } from './proxy/trusted.js';
import { Router } from './router.js';
import { plural } from './units.js';
import { downstreamLimits } from './server/limits.js';
import { Listener, type ListenerOptions } from './server/listener.js';
import { DownReason, type Backend } from './upstream/backend.js';
import { loadBackendTls } from './upstream/tls.js';
import { Upstream } from './upstream/upstream.js';

type ListenerConfig = Config['listeners'][number];
type UpstreamConfig = Config['upstreams'][string];

const viaName = 'switchyard';

/** `http://host:port` for a bound address, with loopback standing in for a wildcard address. */
export function urlOf(address: AddressInfo): string {
  const host = address.family === 'IPv6' ? (address.address === '::' ? '127.0.0.1' : `[${address.address}]`) : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  return `http://${host}:${address.port}`;
}

/** A stable digest of a validated config: equal configs, equal digests. */
export function configDigest(config: Config): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

/**
 * One immutable view of the config: router, upstreams and their health checkers. A request
 * takes the current snapshot when it arrives and keeps it to the end, so a reload never changes
 * the upstream under an in-flight request.
 */
export interface Snapshot {
  readonly config: Config;
  readonly digest: string;
  readonly router: Router;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  readonly health: readonly ActiveHealthChecker[];
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly digest: string;
  /** Why the reload failed; '' when it worked. */
  readonly error: string;
  /** Backends added and removed (drained). */
  readonly added: number;
  readonly removed: number;
  /** Changed settings this reload did not apply because they need a restart, e.g. `listeners[0].maxHeaderSize`. */
  readonly ignored: readonly string[];
}

/**
 * Settings of a listener that stays open across a reload that are fixed when it opens (the
 * node:http server, its connection limit and the proxy context are built from them). host and
 * port are the listener's identity: changing them opens a new listener instead.
 */
/** Every field of a kept listener but its address is read once, when it opens. */
const listenerFieldsFixedAtOpen = (Object.keys(listenerSchema.shape) as (keyof ListenerConfig)[]).filter((field) => field !== 'host' && field !== 'port');

const sameValue = (a: unknown, b: unknown): boolean => a === b || JSON.stringify(a) === JSON.stringify(b);

/**
 * The settings `next` changes that a reload leaves as they are until a restart: fields of kept
 * listeners (against the config each was opened with), and what start-up alone reads from
 * `started`: the admin listener, the log format and file watching.
 */
export function settingsNeedingRestart(next: Config, started: Config, openedWith: ReadonlyMap<string, ListenerConfig>): string[] {
  const ignored: string[] = [];
  next.listeners.forEach((listener, i) => {
    const opened = openedWith.get(listenerKey(listener, i));
    if (opened === undefined) return;
    for (const field of listenerFieldsFixedAtOpen) {
      if (!sameValue(listener[field], opened[field])) ignored.push(`listeners[${i}].${field}`);
    }
  });
  if (next.admin === false || started.admin === false) {
    if (next.admin !== started.admin) ignored.push('admin');
  } else {
    for (const field of ['host', 'port', 'token'] as const) if (next.admin[field] !== started.admin[field]) ignored.push(`admin.${field}`);
  }
  if (next.log.format !== started.log.format) ignored.push('log.format');
  if (next.watch !== started.watch) ignored.push('watch');
  return ignored;
}

/** A listener's identity across reloads: host and port; port-0 listeners also by position. */
function listenerKey(listener: ListenerConfig, index: number): string {
  return `${listener.host ?? '*'}|${listener.port}${listener.port === 0 ? `#${index}` : ''}`;
}

function listenerOptions(listener: ListenerConfig): ListenerOptions {
  return {
    port: listener.port,
    host: listener.host,
    keepAliveTimeoutMs: listener.clientKeepAlive,
    headersTimeoutMs: listener.clientHeadersTimeout,
    backlog: 4096,
    acceptBatch: listener.acceptBatch,
  };
}

/** Turns listen errors into one-line ConfigErrors. */
function listenError(err: unknown, listener: ListenerConfig): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') return new ConfigError(`port ${listener.port} is already in use`, { cause: err });
  if (code === 'EACCES') return new ConfigError(`no permission to listen on port ${listener.port}`, { cause: err });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new ConfigError(`cannot listen on address ${listener.host}`, { cause: err });
  return err;
}

/** An upstream's TLS settings with its files read now (a reload picks up rotated files). */
function upstreamTls(name: string, spec: UpstreamConfig): ReturnType<typeof loadBackendTls> {
  try {
    return loadBackendTls(spec.tls);
  } catch (err) {
    throw new ConfigError(`upstreams.${name}.tls.${(err as Error).message}`, { cause: err });
  }
}

/** A bound listener with its proxy context (per listener: in-flight count and closing flag). */
interface LiveListener {
  readonly key: string;
  /** The config it was opened with; a reload does not change it (see settingsNeedingRestart). */
  readonly config: ListenerConfig;
  readonly listener: Listener;
  readonly ctx: ProxyContext;
  address: AddressInfo;
}

/**
 * Owns the live state: the current snapshot, the listeners and the health checkers. `apply()`
 * builds a new snapshot reusing backends by URL (health, counters and pools survive), swaps one
 * reference, and drains what was removed. A config that fails to build changes nothing.
 */
export class Runtime {
  snapshot: Snapshot;
  /** When the config in force was applied. */
  loadedAt = new Date();
  /** Reload counts and the latest attempt, for the admin API. */
  readonly reloads = { ok: 0, failed: 0, last: null as null | { at: string; ok: boolean; source: string; error: string } };
  private readonly logger: Logger;
  /** The config at start: what start-up alone reads (admin listener, log format, watch) stays as it says. */
  private readonly started: Config;
  /** Timers of outlier ejections and request queues (tests inject a fake). */
  private readonly clock: Clock;
  private readonly listeners = new Map<string, LiveListener>();
  /** Random sticky secrets per upstream, kept across reloads so cookies stay valid. */
  private readonly stickySecrets = new Map<string, string>();
  private queue: Promise<unknown> = Promise.resolve();

  /** Random source of balancers and retry jitter; tests inject a seeded one. */
  private readonly random: Random | undefined;

  constructor(config: Config, logger: Logger, random?: Random, clock: Clock = systemClock) {
    this.logger = logger;
    this.random = random;
    this.clock = clock;
    this.snapshot = this.build(config, null);
    this.started = config;
  }

  /** Listening addresses in config order. */
  get addresses(): AddressInfo[] {
    return [...this.listeners.values()].map((l) => l.address);
  }

  /** Binds every listener and runs the first health-check round. On failure closes what it opened. */
  async start(): Promise<void> {
    try {
      const listeners = this.snapshot.config.listeners;
      for (let i = 0; i < listeners.length; i++) await this.openListener(listeners[i] as ListenerConfig, listenerKey(listeners[i] as ListenerConfig, i));
    } catch (err) {
      await this.close(0);
      throw err;
    }
    await Promise.all(this.snapshot.health.map((checker) => checker.start()));
  }

  private async openListener(config: ListenerConfig, key: string): Promise<LiveListener> {
    const ctx: ProxyContext = {
      runtime: this,
      logger: this.logger,
      accessLog: this.snapshot.config.log.access ? this.logger : null,
      trusted: trustedProxiesFrom(config.trustedProxies),
      forwarding: new WeakMap(),
      limits: downstreamLimits({ maxHeaderBytes: config.maxHeaderSize, requestTimeoutMs: config.requestTimeout, maxConnections: config.maxConnections, maxBodyBytes: config.maxBodySize, ambiguousPaths: config.ambiguousPaths }),
      responseVia: `1.1 ${viaName}`,
      proto: 'http',
      active: 0,
      closing: false,
      onIdle: null,
    };
    const listener = new Listener(ctx, listenerOptions(config));
    let address: AddressInfo;
    try {
      address = await listener.listen();
    } catch (err) {
      throw listenError(err, config);
    }
    const live = { key, config, listener, ctx, address };
    this.listeners.set(live.key, live);
    const shown = config.host === undefined || config.host === '' ? '' : config.host;
    this.logger.info({ address: address.address, port: address.port }, `Load Balancer started at ${shown}:${address.port}`);
    return live;
  }

  private build(config: Config, previous: Snapshot | null): Snapshot {
    const upstreams = new Map<string, Upstream>();
    try {
      for (const [name, spec] of Object.entries(config.upstreams)) {
        upstreams.set(name, this.buildUpstream(name, spec, previous?.upstreams.get(name)));
      }
    } catch (err) {
      // Close only the pools this attempt created; reused backends belong to the live snapshot.
      const live = new Set(previous === null ? [] : [...previous.upstreams.values()].flatMap((u) => u.backends));
      for (const upstream of upstreams.values()) for (const backend of upstream.backends) if (!live.has(backend)) void backend.close();
      throw err;
    }
    const router = new Router(config.routes.map((route) => ({ host: route.host, pathPrefix: route.pathPrefix, upstream: upstreams.get(route.upstream) as Upstream })));
    const health = [...upstreams.entries()].map(([name, upstream]) => {
      const check = (config.upstreams[name] as UpstreamConfig).healthCheck;
      return new ActiveHealthChecker(upstream.backends, resolveHealthOptions(check), this.logger);
    });
    return { config, digest: configDigest(config), router, upstreams, health };
  }

  private buildUpstream(name: string, spec: UpstreamConfig, previous: Upstream | undefined): Upstream {
    let sticky;
    if (spec.sticky !== false) {
      const given = spec.sticky === true ? { cookie: 'swy' } : spec.sticky;
      let secret = given.secret;
      if (secret === undefined) {
        secret = this.stickySecrets.get(name) ?? randomBytes(32).toString('hex');
        this.stickySecrets.set(name, secret);
      }
      sticky = { cookie: given.cookie, secret, ...(given.ttl === undefined ? {} : { ttlMs: given.ttl }) };
    }
    // Trusted proxies belong to listeners; the handler adds them per listener (forwardingFor).
    const forwarding: ForwardingOptions = { preserveHost: spec.preserveHost, viaName, via11: `1.1 ${viaName}`, trusted: null, rewriteLocation: spec.rewriteLocation };
    const outlier = spec.outlierDetection;
    return new Upstream({
      name,
      backends: spec.backends.map((b) => (typeof b === 'string' ? { url: b, weight: 1 } : b)),
      balancer: spec.balancer,
      retry: retryOptionsFromConfig(spec.retry),
      pool: { connectTimeoutMs: spec.timeouts.connect, headersTimeoutMs: spec.timeouts.responseHeaders ?? spec.timeouts.upstream, bodyTimeoutMs: spec.timeouts.bodyIdle ?? spec.timeouts.upstream, keepAliveTimeoutMs: spec.timeouts.upstreamKeepAlive, maxHeaderBytes: spec.maxResponseHeaderSize, tls: upstreamTls(name, spec) },
      forwarding,
      hashKey: spec.hashKey,
      slowStartMs: spec.slowStart,
      ewmaDecayMs: spec.ewmaDecay,
      outlier:
        outlier === false
          ? null
          : { consecutiveFailures: outlier.consecutiveFailures, consecutive5xx: outlier.consecutive5xx, baseEjectionMs: outlier.baseEjectionTime, maxEjectionMs: outlier.maxEjectionTime, maxEjectionPercent: outlier.maxEjectionPercent },
      panicThresholdPercent: spec.panicThreshold,
      queue: { size: spec.queue.size, timeoutMs: spec.queue.timeout },
      logger: this.logger,
      clock: this.clock,
      ...(spec.maxInFlight === undefined ? {} : { maxInFlight: spec.maxInFlight }),
      ...(this.random === undefined ? {} : { random: this.random }),
      ...(sticky === undefined ? {} : { sticky }),
      ...(previous === undefined ? {} : { existing: new Map(previous.backends.map((b) => [b.url, b])) }),
    });
  }

  /**
   * Applies a new config: builds it, opens new listeners, swaps the snapshot, then drains removed
   * backends and closes removed listeners gracefully. Reloads run one at a time. Never throws:
   * a failure is logged and returned, and the old config stays in force.
   */
  apply(config: Config, source: string): Promise<ReloadResult> {
    const run = this.queue.then(() => this.applyNow(config, source));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(config: Config, source: string): Promise<ReloadResult> {
    const old = this.snapshot;
    let next: Snapshot;
    const opened: LiveListener[] = [];
    // Before new listeners open: those are opened with the new settings.
    const ignored = settingsNeedingRestart(config, this.started, new Map([...this.listeners.values()].map((live) => [live.key, live.config])));
    try {
      next = this.build(config, old);
      for (let i = 0; i < config.listeners.length; i++) {
        const key = listenerKey(config.listeners[i] as ListenerConfig, i);
        if (!this.listeners.has(key)) opened.push(await this.openListener(config.listeners[i] as ListenerConfig, key));
      }
    } catch (err) {
      for (const live of opened) {
        this.listeners.delete(live.key);
        await live.listener.close(0);
      }
      return this.reloadFailed(source, (err as Error).message);
    }
    this.snapshot = next;
    for (const live of this.listeners.values()) live.ctx.accessLog = config.log.access ? this.logger : null;
    for (const checker of old.health) checker.stop();
    for (const checker of next.health) void checker.start();

    const kept = new Set([...next.upstreams.values()].flatMap((u) => u.backends));
    const removed = [...old.upstreams.values()].flatMap((u) => u.backends).filter((b) => !kept.has(b));
    const before = new Set([...old.upstreams.values()].flatMap((u) => u.backends));
    const added = [...kept].filter((b) => !before.has(b)).length;
    for (const backend of removed) this.drain(backend);

    const wanted = new Set(config.listeners.map((listener, i) => listenerKey(listener, i)));
    const grace = config.gracePeriod;
    for (const [key, live] of this.listeners) {
      if (wanted.has(key)) continue;
      this.listeners.delete(key);
      this.logger.info({ port: live.address.port }, `listener :${live.address.port} removed: closing after in-flight requests`);
      void this.closeListener(live, grace);
    }
    this.logger.info({ source, digest: next.digest.slice(0, 12), added, removed: removed.length }, `config reloaded (${source}): ${plural(added, 'backend')} added, ${removed.length} draining`);
    if (ignored.length > 0) {
      this.logger.warn({ source, ignored }, `config reload (${source}) did not apply ${ignored.join(', ')}: restart Switchyard for ${ignored.length === 1 ? 'it' : 'them'} to take effect`);
    }
    this.loadedAt = new Date();
    this.reloads.ok++;
    this.reloads.last = { at: this.loadedAt.toISOString(), ok: true, source, error: '' };
    publishReload({ ok: true, source, digest: next.digest, error: '' });
    return { ok: true, digest: next.digest, error: '', added, removed: removed.length, ignored };
  }

  /** Logs and publishes a failed reload; the config in force is unchanged. */
  reloadFailed(source: string, error: string): ReloadResult {
    this.logger.error({ source, error }, `config reload (${source}) failed, keeping the running config: ${error}`);
    this.reloads.failed++;
    this.reloads.last = { at: new Date().toISOString(), ok: false, source, error };
    publishReload({ ok: false, source, digest: this.snapshot.digest, error });
    return { ok: false, digest: this.snapshot.digest, error, added: 0, removed: 0, ignored: [] };
  }

  /** A removed backend takes nothing new; its pool closes once its requests are done. */
  private drain(backend: Backend): void {
    backend.markDown(DownReason.draining);
    this.logger.info({ backend: backend.url, inFlight: backend.inFlight }, `${backend.url} removed: draining ${backend.inFlight} in-flight`);
    void backend.close();
  }

  /** Closes a listener gracefully; says how many requests were cut if the grace period ran out. */
  private async closeListener(live: LiveListener, graceMs: number): Promise<void> {
    const cut = await live.listener.close(graceMs);
    if (cut > 0) {
      const port = live.address.port;
      this.logger.warn({ port, cut, graceMs }, `grace period over: cut ${cut} in-flight request${cut === 1 ? '' : 's'} on :${port}`);
    }
  }

  /** Runs one health-check round of every upstream now. */
  async checkHealth(): Promise<void> {
    await Promise.all(this.snapshot.health.map((checker) => checker.round()));
  }

  /** Graceful stop: listeners finish in-flight requests (up to `graceMs`), then pools close. */
  async close(graceMs: number): Promise<void> {
    for (const checker of this.snapshot.health) checker.stop();
    await Promise.all([...this.listeners.values()].map((live) => this.closeListener(live, graceMs)));
    this.listeners.clear();
    await Promise.all([...this.snapshot.upstreams.values()].map((upstream) => upstream.close()));
  }
}
