import type { AddressInfo } from 'node:net';
import { createMetrics } from './admin/metrics.js';
import { AdminServer, adminToken } from './admin/server.js';
import { loadConfig, parseConfigInput } from './config/load.js';
import type { Clock, Random } from './clock.js';
import type { Config, ConfigInput } from './config/schema.js';
import { ConfigError } from './errors.js';
import { createLogger, type Logger, type LogOptions } from './log.js';
import { configFromStartOptions, isLogger, type StartOptions } from './options.js';
import { Runtime, type ReloadResult } from './runtime.js';
import type { Upstream } from './upstream/upstream.js';
import { ConfigWatcher } from './config/watch.js';
import { warnUnresolvedBackends } from './upstream/dns-warning.js';

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
export type { BalancerName, Config, ConfigInput } from './config/schema.js';
export type { ReloadResult } from './runtime.js';
export { loadConfig } from './config/load.js';

export const version = '0.1.0';

export interface Switchyard {
  /** Where the (first) listener listens. */
  readonly address: AddressInfo;
  /** `http://host:port` (`https://` for TLS) for the first listener, with loopback standing in for a wildcard address. */
  readonly url: string;
  /** Every listener's URL, in config order. */
  readonly urls: readonly string[];
  /** The first upstream of the config in force (the only one when started from flags). */
  readonly upstream: Upstream;
  /** Every upstream of the config in force, by name. */
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** `http://host:port` of the admin API and dashboard, or null when it is off. */
  readonly adminUrl: string | null;
  readonly logger: Logger;
  /** Runs one round of active health checks now. */
  checkHealth(): Promise<void>;
  /**
   * Applies a new config: `config` when given, else the config file read again. Keeps the old
   * config when the new one is invalid; never throws for a bad config.
   */
  reload(config?: ConfigInput, source?: string): Promise<ReloadResult>;
  /** Graceful stop: no new connections, in-flight requests finish (up to the grace period). */
  close(): Promise<void>;
}

interface LaunchOptions {
  readonly logger: Logger;
  /** Config file to re-read on reload, or null. */
  readonly file: string | null;
  /** Watch the file and reload on change. */
  readonly watch: boolean;
  /** Settings given outside the file that win over it, applied to every config loaded. */
  readonly adjust: (config: Config) => Config;
  /** Random source of balancers and retry jitter; default Math.random. */
  readonly random?: Random;
  /** Timers of outlier ejections and request queues; default the system clock. */
  readonly clock?: Clock;
}

async function launch(config: Config, options: LaunchOptions): Promise<Switchyard> {
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
  await runtime.start();
  await resolving;

  const reload = async (source: string, input?: ConfigInput): Promise<ReloadResult> => {
    let next: Config;
    try {
      if (input !== undefined) next = options.adjust(parseConfigInput(input));
      else if (file !== null) next = options.adjust(loadConfig(file));
      else return runtime.reloadFailed(source, 'no config file to reload (started from flags or options)');
    } catch (err) {
      return runtime.reloadFailed(source, (err as Error).message);
    }
    const result = await runtime.apply(next, source);
    if (result.ok && next.log.level !== logger.level) logger.level = next.log.level;
    return result;
  };

  let admin: AdminServer | null = null;
  let watcher: ConfigWatcher | null = null;
  try {
    if (config.admin !== false) {
      const metrics = createMetrics({ upstreams: () => runtime.snapshot.upstreams.values(), certificates: () => runtime.certificates(), discoveries: () => runtime.discoveries.all() });
      admin = new AdminServer({ runtime, logger, version, host: config.admin.host, port: config.admin.port, token, configSource: file ?? 'flags', reload: () => reload('api'), metrics });
      await admin.listen();
    }
    if (file !== null && options.watch) watcher = new ConfigWatcher(file, () => void reload('file'), logger);
  } catch (err) {
    await admin?.close();
    await runtime.close(0);
    throw err;
  }

  const addresses = runtime.addresses;
  const first = addresses[0] as AddressInfo;
  const urls = runtime.urls;
  let closing: Promise<void> | null = null;
  return {
    address: first,
    url: urls[0] as string,
    urls,
    get upstream() {
      return runtime.snapshot.upstreams.values().next().value as Upstream;
    },
    get upstreams() {
      return runtime.snapshot.upstreams;
    },
    adminUrl: admin === null ? null : admin.url,
    logger,
    checkHealth: () => runtime.checkHealth(),
    reload: (input?: ConfigInput, source = 'library') => reload(source, input),
    close() {
      closing ??= (async () => {
        watcher?.close();
        await Promise.all([runtime.close(runtime.snapshot.config.gracePeriod), admin?.close()]);
      })();
      return closing;
    },
  };
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
}

/** Starts a load balancer from a config file or value (the `--config` path). */
export async function startFromConfig(source: ConfigSource, options: ConfigStartOptions = {}): Promise<Switchyard> {
  if ('file' in source && source.file === '') throw new ConfigError('config file name is empty');
  const given = options.log;
  // Settings from outside the file (flags) win on every reload too.
  const adjust = (c: Config): Config => {
    const level = isLogger(given) ? undefined : given?.level;
    if (level === undefined && options.accessLog !== true) return c;
    return { ...c, log: { ...c.log, ...(level === undefined ? {} : { level }), ...(options.accessLog === true ? { access: true } : {}) } };
  };
  const config = adjust('file' in source ? loadConfig(source.file) : parseConfigInput(source.config));
  const logger = isLogger(given) ? given : createLogger({ level: config.log.level, ...(config.log.format === undefined ? {} : { format: config.log.format }), ...given });
  return launch(config, { logger, file: 'file' in source ? source.file : null, watch: options.watch ?? config.watch, adjust, ...(options.clock === undefined ? {} : { clock: options.clock }) });
}
