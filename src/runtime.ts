import type { AddressInfo } from 'node:net';
import { systemClock, type Clock, type Random } from './clock.js';
import type { Config } from './config/schema.js';
import { publishReload } from './events.js';
import { listenError, listenerKey, listenerOptions, settingsNeedingRestart, type ListenerConfig } from './listener-config.js';
import type { Logger } from './log.js';
import type { ProxyContext, TunnelCounts } from './proxy/context.js';
import { trustedProxiesFrom } from './proxy/trusted.js';
import { downstreamLimits } from './server/limits.js';
import { Listener } from './server/listener.js';
import { TlsTermination } from './server/tls-server.js';
import { Discoveries } from './discoveries.js';
import { oneProcess, type RuntimeRole } from './runtime-role.js';
import { buildSnapshot, viaName, type Snapshot, type SnapshotDeps } from './snapshot.js';
import { plural } from './units.js';
import { DownReason, type Backend } from './upstream/backend.js';

export type { Snapshot } from './snapshot.js';
export type { RuntimeRole } from './runtime-role.js';

/** `http://host:port` (or https) for a bound address, with loopback standing in for a wildcard address. */
export function urlOf(address: AddressInfo, scheme: 'http' | 'https' = 'http'): string {
  const host = address.family === 'IPv6' ? (address.address === '::' ? '127.0.0.1' : `[${address.address}]`) : address.address === '0.0.0.0' ? '127.0.0.1' : address.address;
  return `${scheme}://${host}:${address.port}`;
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

/** One certificate of an HTTPS listener, for the admin API and `/metrics`. */
export interface CertificateInfo {
  /** The listener's bound port. */
  readonly port: number;
  readonly cert: string;
  readonly names: readonly string[];
  readonly expiresAtMs: number;
}


/** A bound listener with its proxy context (per listener: in-flight count and closing flag). */
interface LiveListener {
  readonly key: string;
  /** The config it was opened with; a reload does not change it (see settingsNeedingRestart). */
  readonly config: ListenerConfig;
  readonly listener: Listener;
  readonly ctx: ProxyContext;
  /** Its certificates, for an HTTPS listener; reloads swap them. */
  readonly tls: TlsTermination | null;
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
  private readonly listeners = new Map<string, LiveListener>();
  private queue: Promise<unknown> = Promise.resolve();
  /** What snapshots are built with: the logger, the clock and random source tests inject, sticky secrets. */
  readonly deps: SnapshotDeps;
  private readonly role: RuntimeRole;
  /** The discovery sources of upstreams with `discover:` (issue 13). */
  readonly discoveries: Discoveries;

  constructor(config: Config, logger: Logger, random?: Random, clock: Clock = systemClock, role: RuntimeRole = oneProcess) {
    this.logger = logger;
    this.role = role;
    const observe = role.onBackendState === undefined ? {} : { onBackendState: role.onBackendState };
    this.deps = { logger, clock, random, stickySecrets: role.stickySecrets ?? new Map(), healthChecks: role.healthChecks, ...observe };
    this.discoveries = new Discoveries(this, logger, clock, role.discovery);
    const plan = this.discoveries.plan(config);
    this.snapshot = buildSnapshot(config, null, this.deps, this.discoveries.sets(plan));
    this.discoveries.commit(plan);
    this.started = config;
  }

  /** Listening addresses in config order. */
  get addresses(): AddressInfo[] {
    return [...this.listeners.values()].map((l) => l.address);
  }

  /** Listening URLs in config order: https:// for HTTPS listeners. */
  get urls(): string[] {
    return [...this.listeners.values()].map((l) => urlOf(l.address, l.tls === null ? 'http' : 'https'));
  }

  /** Each listener (`host:port`) and its WebSocket tunnel figures, in config order (as `addresses`). */
  listenerTunnels(): { listener: string; tunnels: TunnelCounts }[] {
    return [...this.listeners.values()].map(({ address: a, ctx }) => ({
      listener: a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`,
      tunnels: { ...ctx.tunnelCounts },
    }));
  }

  /** The certificates of the HTTPS listeners in use now: their files, names and expiry. */
  certificates(): CertificateInfo[] {
    return [...this.listeners.values()].flatMap((live) =>
      (live.tls?.loaded ?? []).map((c) => ({ port: live.address.port, cert: c.files.cert, names: c.names, expiresAtMs: c.expiresAtMs })),
    );
  }

  /** Binds every listener and runs the first health-check round. On failure closes what it opened. */
  async start(): Promise<void> {
    try {
      // Backends found before the first request: each source's first answer (bounded) is awaited.
      await this.discoveries.start((sets) => (this.snapshot = buildSnapshot(this.snapshot.config, this.snapshot, this.deps, sets)));
      const listeners = this.role.listen ? this.snapshot.config.listeners : [];
      for (let i = 0; i < listeners.length; i++) await this.openListener(listeners[i] as ListenerConfig, listenerKey(listeners[i] as ListenerConfig, i));
    } catch (err) {
      await this.close(0);
      throw err;
    }
    await Promise.all(this.snapshot.health.map((checker) => checker.start()));
  }

  private async openListener(config: ListenerConfig, key: string): Promise<LiveListener> {
    const tls = config.tls === undefined ? null : new TlsTermination(config.tls, this.logger);
    const ctx: ProxyContext = {
      runtime: this,
      logger: this.logger,
      accessLog: this.snapshot.config.log.access ? this.logger : null,
      trusted: trustedProxiesFrom(config.trustedProxies),
      forwarding: new WeakMap(),
      limits: downstreamLimits({ maxHeaderBytes: config.maxHeaderSize, requestTimeoutMs: config.requestTimeout, maxConnections: config.maxConnections, maxBodyBytes: config.maxBodySize, ambiguousPaths: config.ambiguousPaths }),
      responseVia: `1.1 ${viaName}`,
      proto: tls === null ? 'http' : 'https',
      redirectHttps: config.redirectHttps && tls === null,
      active: 0,
      tunnels: new Set(),
      tunnelCounts: { open: 0, total: 0, bytesIn: 0, bytesOut: 0 },
      closing: false,
      onIdle: null,
    };
    const options = listenerOptions(config, tls);
    const share = this.role.acceptShare ?? 1;
    // Workers share one socket: each takes its part of the batch, on duplicated descriptors (SO_REUSEPORT sockets would be each worker's own).
    const listener = new Listener(ctx, share === 1 ? options : { ...options, acceptBatch: Math.ceil(options.acceptBatch / share), acceptMode: 'duplicate' });
    let address: AddressInfo;
    try {
      address = await listener.listen();
    } catch (err) {
      tls?.close();
      throw listenError(err, config);
    }
    const live = { key, config, listener, ctx, tls, address };
    this.listeners.set(live.key, live);
    const shown = config.host === undefined || config.host === '' ? '' : config.host;
    if (this.role.announce === false) this.logger.debug({ address: address.address, port: address.port, acceptFds: listener.acceptFds }, `listening at ${shown}:${address.port}`);
    else this.logger.info({ address: address.address, port: address.port }, `Load Balancer started at ${shown}:${address.port}`);
    return live;
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

  /** Queues a task (a discovery update) behind the reloads before it. */
  enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((err: unknown) => this.logger.error({ err }, `discovery update failed: ${(err as Error).message}`));
  }

  private async applyNow(config: Config, source: string): Promise<ReloadResult> {
    const old = this.snapshot;
    let next: Snapshot;
    const opened: LiveListener[] = [];
    // Before new listeners open: those are opened with the new settings.
    const ignored = settingsNeedingRestart(config, this.started, new Map([...this.listeners.values()].map((live) => [live.key, live.config])));
    let plan;
    try {
      plan = this.discoveries.plan(config);
      next = buildSnapshot(config, old, this.deps, this.discoveries.sets(plan));
      for (let i = 0; i < (this.role.listen ? config.listeners.length : 0); i++) {
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
    this.discoveries.commit(plan);
    for (const live of this.listeners.values()) live.ctx.accessLog = config.log.access ? this.logger : null;
    // Kept HTTPS listeners read their certificates again (issue 11); a bad file keeps the old ones.
    config.listeners.forEach((listener, i) => {
      const live = this.listeners.get(listenerKey(listener, i));
      if (live?.tls != null && listener.tls !== undefined && !opened.includes(live)) live.tls.reload(listener.tls);
    });
    for (const checker of old.health) checker.stop();
    for (const checker of next.health) void checker.start();

    const kept = new Set([...next.upstreams.values()].flatMap((u) => u.backends));
    const removed = [...old.upstreams.values()].flatMap((u) => u.backends).filter((b) => !kept.has(b));
    const before = new Set([...old.upstreams.values()].flatMap((u) => u.backends));
    const added = [...kept].filter((b) => !before.has(b)).length;
    for (const backend of removed) this.drainBackend(backend, config.gracePeriod);

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

  /**
   * A removed backend takes nothing new; its pool closes once its requests are done. Its
   * WebSocket tunnels, which left the pool, run for the grace period and are then closed.
   */
  drainBackend(backend: Backend, graceMs: number): void {
    backend.markDown(DownReason.draining);
    this.logger.info({ backend: backend.url, inFlight: backend.inFlight }, `${backend.url} removed: draining ${backend.inFlight} in-flight`);
    void backend.close();
    if (backend.tunnels > 0) setTimeout(() => backend.closeTunnels(), graceMs).unref();
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
    await this.discoveries.stop();
    for (const checker of this.snapshot.health) checker.stop();
    await Promise.all([...this.listeners.values()].map((live) => this.closeListener(live, graceMs)));
    this.listeners.clear();
    await Promise.all([...this.snapshot.upstreams.values()].map((upstream) => upstream.close()));
  }
}
