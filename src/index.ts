import type { AddressInfo } from 'node:net';
import { createMetrics } from './admin/metrics.js';
import { AdminServer, adminToken } from './admin/server.js';
import { startPrimary } from './cluster/primary.js';
import { loadConfig, parseConfigInput } from './config/load.js';
import { resolveWorkers } from './config/process-schema.js';
import type { Clock } from './clock.js';
import type { Config, ConfigInput } from './config/schema.js';
import { ConfigError } from './errors.js';
import { createLogger, type Logger, type LogOptions } from './log.js';
import { configFromStartOptions, isLogger, type StartOptions } from './options.js';
import { Runtime, type ReloadResult } from './runtime.js';
import { nextConfig, switchyardHandle, type LaunchOptions, type Switchyard } from './switchyard.js';
import { ConfigWatcher } from './config/watch.js';
import { warnUnresolvedBackends } from './upstream/dns-warning.js';
import { readinessOf } from './readiness.js';
import { version } from './version.js';

export { ConfigError, SwitchyardError, ErrorCodes } from './errors.js';
export { DownReason, type Backend } from './upstream/backend.js';
export type { Upstream } from './upstream/upstream.js';
export type { Balancer, PickContext } from './balancer/types.js';
export type { StickyOptions } from './balancer/sticky.js';
export type { HashKeySpec } from './upstream/hash-key.js';
export type { RetryOptions } from './upstream/retry-options.js';
export type { Logger, LogOptions } from './log.js';
export type { StartOptions, AdminOptions } from './options.js';
export type { BackendTlsConfig } from './upstream/tls.js';
export type { UpstreamProtocol } from './upstream/protocol.js';
export type { BalancerName, Config, ConfigInput } from './config/schema.js';
export type { ReloadResult } from './runtime.js';
export { loadConfig } from './config/load.js';

export { version } from './version.js';
export type { Switchyard } from './switchyard.js';

async function launch(config: Config, options: LaunchOptions): Promise<Switchyard> {
  // Several workers: this process becomes the primary of a node:cluster (docs/workers.md).
  if (resolveWorkers(config.workers) > 1) return startPrimary(config, options);
  const { logger, file } = options;
  // Checked before anything opens: a public admin listener without a token is refused.
  const token = config.admin === false ? undefined : adminToken(config.admin);
  const runtime = new Runtime(config, logger, options.random, options.clock);
  for (const upstream of runtime.snapshot.upstreams.values()) {
    for (const backend of upstream.backends) logger.info({ upstream: upstream.name, backend: backend.url }, `Configured server: ${backend.url}`);
  }
  // Looked up while the listeners open and the first health checks run, so it costs no extra wait.
  const resolving = warnUnresolvedBackends(
    [...runtime.snapshot.upstreams.values()].flatMap((upstream) => upstream.backends.map((backend) => ({ upstream: upstream.name, backend }))),
    logger,
  );
  const reload = async (source: string, input?: ConfigInput): Promise<ReloadResult> => {
    let next: Config | string;
    try {
      next = nextConfig(options, input);
      if (typeof next === 'string') return runtime.reloadFailed(source, next);
    } catch (err) {
      return runtime.reloadFailed(source, (err as Error).message);
    }
    const result = await runtime.apply(next, source);
    if (result.ok && next.log.level !== logger.level) logger.level = next.log.level;
    return result;
  };

  // GET /ready on the admin listener: listening, the first health round done, and every
  // discovered upstream's first set in (issue 13).
  const phase = { firstHealthRoundDone: false, draining: false };
  const ready = () =>
    readinessOf({ draining: phase.draining, listening: runtime.addresses.length > 0, firstHealthRoundDone: phase.firstHealthRoundDone, awaitingDiscovery: runtime.discoveries.awaiting() });

  let admin: AdminServer | null = null;
  // The admin listener opens first, so probes get an answer (503) while the rest starts.
  if (config.admin !== false) {
    const metrics = createMetrics({ upstreams: () => runtime.snapshot.upstreams.values(), certificates: () => runtime.certificates(), listenerTunnels: () => runtime.listenerTunnels(), discoveries: () => runtime.discoveries.all() });
    admin = new AdminServer({ runtime, logger, version, host: config.admin.host, port: config.admin.port, token, configSource: file ?? 'flags', reload: () => reload('api'), metrics, ready });
    await admin.listen().catch(async (err: unknown) => {
      await runtime.close(0);
      throw err;
    });
  }
  // On failure start() has closed what it opened.
  await runtime.start().catch(async (err: unknown) => {
    await admin?.close();
    throw err;
  });
  phase.firstHealthRoundDone = true;
  await resolving;
  const watcher = file !== null && options.watch ? new ConfigWatcher(file, () => void reload('file'), logger) : null;

  return switchyardHandle({
    address: runtime.addresses[0] as AddressInfo,
    urls: runtime.urls,
    runtime,
    adminUrl: admin === null ? null : admin.url,
    logger,
    reload,
    stop: async () => {
      phase.draining = true;
      watcher?.close();
      // The admin listener outlives the drain, so /ready answers 503 meanwhile.
      await runtime.close(runtime.snapshot.config.gracePeriod);
      await admin?.close();
    },
  });
}

/** Starts a load balancer from flag-like options. Resolves once it listens and the first health check round is done. */
export async function start(options: StartOptions): Promise<Switchyard> {
  const config = configFromStartOptions(options);
  const logger = isLogger(options.log) ? options.log : createLogger(options.log);
  return launch(config, { logger, file: null, watch: false, adjust: (c) => c, ...(options.random === undefined ? {} : { random: options.random }) });
}

/** Where startFromConfig takes its config: a file (reloadable and watched) or a value. */
export type ConfigSource = { readonly file: string } | { readonly config: ConfigInput };

export interface ConfigStartOptions {
  /** Logging on top of the config's `log` section: overrides, or a logger of your own. */
  readonly log?: LogOptions | Logger;
  /** Reload when the file changes (default: the config's `watch`). */
  readonly watch?: boolean;
  /** Turn the access log on whatever the file says. */
  readonly accessLog?: boolean;
  /** Time source of outlier ejections and request queue timeouts. Default: the system clock (tests inject a fake). */
  readonly clock?: Clock;
  /** Worker processes, over the config's `workers` (the CLI's --workers). See docs/workers.md. */
  readonly workers?: number | 'auto';
}

/** Starts a load balancer from a config file or value (the `--config` path). */
export async function startFromConfig(source: ConfigSource, options: ConfigStartOptions = {}): Promise<Switchyard> {
  if ('file' in source && source.file === '') throw new ConfigError('config file name is empty');
  const given = options.log;
  // Settings from outside the file (flags) win on every reload too.
  const adjust = (c: Config): Config => {
    const level = isLogger(given) ? undefined : given?.level;
    if (options.workers !== undefined && c.workers !== options.workers) c = { ...c, workers: options.workers };
    if (level === undefined && options.accessLog !== true) return c;
    return { ...c, log: { ...c.log, ...(level === undefined ? {} : { level }), ...(options.accessLog === true ? { access: true } : {}) } };
  };
  const config = adjust('file' in source ? loadConfig(source.file) : parseConfigInput(source.config));
  const logger = isLogger(given) ? given : createLogger({ level: config.log.level, ...(config.log.format === undefined ? {} : { format: config.log.format }), ...given });
  const logFormat = isLogger(given) ? undefined : given?.format;
  return launch(config, {
    logger,
    file: 'file' in source ? source.file : null,
    watch: options.watch ?? config.watch,
    adjust,
    ...(logFormat === undefined ? {} : { logFormat }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
}
