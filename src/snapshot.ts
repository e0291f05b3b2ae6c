import { createHash, randomBytes } from 'node:crypto';
import type { Clock, Random } from './clock.js';
import type { Config } from './config/schema.js';
import { ConfigError } from './errors.js';
import { ActiveHealthChecker } from './health/active.js';
import { resolveHealthOptions } from './health/options.js';
import type { Logger } from './log.js';
import type { UpstreamForwarding } from './upstream/forwarding.js';
import { retryOptionsFromConfig } from './proxy/retry.js';
import { Router } from './router.js';
import { loadBackendTls } from './upstream/tls.js';
import { Upstream } from './upstream/upstream.js';
import type { DiscoveredBackend } from './discovery/source.js';
import { DownReason, type Backend } from './upstream/backend.js';

type UpstreamConfig = Config['upstreams'][string];

/** Our name in Via fields. */
export const viaName = 'switchyard';

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

/** What building a snapshot needs from the runtime that owns it. */
export interface SnapshotDeps {
  readonly logger: Logger;
  /** Timers of outlier ejections and request queues. */
  readonly clock: Clock;
  /** Random source of balancers and retry jitter; undefined: Math.random. */
  readonly random: Random | undefined;
  /** Random sticky secrets per upstream, kept across reloads so cookies stay valid. */
  readonly stickySecrets: Map<string, string>;
  /** Build active health checkers (false in worker processes: the primary runs them). Default true. */
  readonly healthChecks?: boolean;
  /** Told of every down-reason change of every backend (the primary broadcasts them to workers). */
  readonly onBackendState?: (backend: Backend) => void;
}

/** Makes sure every sticky upstream without a configured secret has a random one in `secrets`. */
export function ensureStickySecrets(config: Config, secrets: Map<string, string>): void {
  for (const [name, spec] of Object.entries(config.upstreams)) {
    if (spec.sticky === false || (spec.sticky !== true && spec.sticky.secret !== undefined) || secrets.has(name)) continue;
    secrets.set(name, randomBytes(32).toString('hex'));
  }
}

/** The backend sets discovery found, by upstream name (issue 13); an upstream with `discover` and no entry has none yet. */
export type DiscoveredSets = ReadonlyMap<string, readonly DiscoveredBackend[]>;

/**
 * Builds the snapshot a config means, reusing `previous`'s backends by URL (health, counters and
 * pools survive). On failure closes only the pools it created and throws.
 */
export function buildSnapshot(config: Config, previous: Snapshot | null, deps: SnapshotDeps, discovered: DiscoveredSets = new Map()): Snapshot {
  const upstreams = new Map<string, Upstream>();
  try {
    for (const [name, spec] of Object.entries(config.upstreams)) {
      upstreams.set(name, buildUpstream(name, spec, previous?.upstreams.get(name), deps, discovered.get(name) ?? [], 0));
    }
  } catch (err) {
    // Close only the pools this attempt created; reused backends belong to the live snapshot.
    const live = new Set(previous === null ? [] : [...previous.upstreams.values()].flatMap((u) => u.backends));
    for (const upstream of upstreams.values()) for (const backend of upstream.backends) if (!live.has(backend)) void backend.close();
    throw err;
  }
  const router = routerFor(config, upstreams);
  const health = deps.healthChecks === false ? [] : [...upstreams.entries()].map(([name, upstream]) => checkerFor(config, name, upstream, deps));
  return { config, digest: configDigest(config), router, upstreams, health };
}

/**
 * A discovery update (issue 13): `snapshot` with one upstream's backends replaced by `set`, a
 * partial reload through the same path (backends reused by URL). Backends new to the upstream
 * start down for the health check and take traffic once one passes. Throws, creating nothing, on failure.
 */
export function withDiscoveredSet(snapshot: Snapshot, name: string, set: readonly DiscoveredBackend[], deps: SnapshotDeps): Snapshot {
  const spec = snapshot.config.upstreams[name] as UpstreamConfig;
  const upstream = buildUpstream(name, spec, snapshot.upstreams.get(name), deps, set, DownReason.healthCheck);
  const upstreams = new Map(snapshot.upstreams);
  upstreams.set(name, upstream);
  const health = deps.healthChecks === false ? [] : [...upstreams.keys()].map((key, i) => (key === name ? checkerFor(snapshot.config, name, upstream, deps) : (snapshot.health[i] as ActiveHealthChecker)));
  return { config: snapshot.config, digest: snapshot.digest, router: routerFor(snapshot.config, upstreams), upstreams, health };
}

function routerFor(config: Config, upstreams: ReadonlyMap<string, Upstream>): Router {
  return new Router(config.routes.map((route) => ({ host: route.host, pathPrefix: route.pathPrefix, upstream: upstreams.get(route.upstream) as Upstream })));
}

function checkerFor(config: Config, name: string, upstream: Upstream, deps: SnapshotDeps): ActiveHealthChecker {
  return new ActiveHealthChecker(upstream.backends, resolveHealthOptions((config.upstreams[name] as UpstreamConfig).healthCheck), deps.logger);
}

function buildUpstream(name: string, spec: UpstreamConfig, previous: Upstream | undefined, deps: SnapshotDeps, discovered: readonly DiscoveredBackend[], newBackendDownReasons: number): Upstream {
  let sticky;
  if (spec.sticky !== false) {
    const given = spec.sticky === true ? { cookie: 'swy' } : spec.sticky;
    let secret = given.secret;
    if (secret === undefined) {
      secret = deps.stickySecrets.get(name) ?? randomBytes(32).toString('hex');
      deps.stickySecrets.set(name, secret);
    }
    sticky = { cookie: given.cookie, secret, ...(given.ttl === undefined ? {} : { ttlMs: given.ttl }) };
  }
  // Trusted proxies belong to listeners; the handler adds them per listener (forwardingFor).
  const forwarding: UpstreamForwarding = { preserveHost: spec.preserveHost, viaName, via11: `1.1 ${viaName}`, rewriteLocation: spec.rewriteLocation };
  const outlier = spec.outlierDetection;
  return new Upstream({
    name,
    backends: spec.discover === undefined ? (spec.backends ?? []).map((b) => (typeof b === 'string' ? { url: b, weight: 1 } : b)) : discovered,
    balancer: spec.balancer,
    retry: retryOptionsFromConfig(spec.retry),
    pool: { connectTimeoutMs: spec.timeouts.connect, headersTimeoutMs: spec.timeouts.responseHeaders ?? spec.timeouts.upstream, bodyTimeoutMs: spec.timeouts.bodyIdle ?? spec.timeouts.upstream, keepAliveTimeoutMs: spec.timeouts.upstreamKeepAlive, maxHeaderBytes: spec.maxResponseHeaderSize, tls: upstreamTls(name, spec), protocol: spec.protocol },
    forwarding,
    hashKey: spec.hashKey,
    slowStartMs: spec.slowStart,
    ewmaDecayMs: spec.ewmaDecay,
    outlier:
      outlier === false
        ? null
        : { consecutiveFailures: outlier.consecutiveFailures, consecutive5xx: outlier.consecutive5xx, baseEjectionMs: outlier.baseEjectionTime, maxEjectionMs: outlier.maxEjectionTime, maxEjectionPercent: outlier.maxEjectionPercent },
    panicThresholdPercent: spec.panicThreshold,
    tunnels: { idleTimeoutMs: spec.timeouts.tunnelIdle, closeOnDown: spec.closeTunnelsOnDown },
    queue: { size: spec.queue.size, timeoutMs: spec.queue.timeout },
    logger: deps.logger,
    clock: deps.clock,
    ...(deps.onBackendState === undefined ? {} : { onBackendState: deps.onBackendState }),
    ...(spec.maxInFlight === undefined ? {} : { maxInFlight: spec.maxInFlight }),
    ...(deps.random === undefined ? {} : { random: deps.random }),
    ...(sticky === undefined ? {} : { sticky }),
    ...(previous === undefined ? {} : { existing: new Map(previous.backends.map((b) => [b.url, b])) }),
    ...(spec.discover === undefined ? {} : { discovered: true, newBackendDownReasons, terminating: new Set(discovered.filter((b) => b.terminating).map((b) => b.url)) }),
  });
}

/** An upstream's TLS settings with its files read now (a reload picks up rotated files). */
function upstreamTls(name: string, spec: UpstreamConfig): ReturnType<typeof loadBackendTls> {
  try {
    return loadBackendTls(spec.tls);
  } catch (err) {
    throw new ConfigError(`upstreams.${name}.tls.${(err as Error).message}`, { cause: err });
  }
}
