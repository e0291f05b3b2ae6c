import type { AddressInfo } from 'node:net';
import type { Clock, Random } from './clock.js';
import { loadConfig, parseConfigInput } from './config/load.js';
import type { Config, ConfigInput } from './config/schema.js';
import type { LogFormat, Logger } from './log.js';
import type { ReloadResult, Runtime } from './runtime.js';
import type { Upstream } from './upstream/upstream.js';

/** What start() and startFromConfig() return, whether one process serves or several workers do. */
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

/** How a Switchyard is started: by launch() in one process, by startPrimary() with workers. */
export interface LaunchOptions {
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
  /** The log format asked for outside the config (workers log the same way). */
  readonly logFormat?: LogFormat;
}

/** The config a reload applies: `input` when given, else the file read again; or why there is none. Throws a ConfigError. */
export function nextConfig(options: LaunchOptions, input: ConfigInput | undefined): Config | string {
  if (input !== undefined) return options.adjust(parseConfigInput(input));
  if (options.file !== null) return options.adjust(loadConfig(options.file));
  return 'no config file to reload (started from flags or options)';
}

/** What a handle is made of: a runtime, where it listens, and how it reloads and stops. */
export interface HandleParts {
  readonly address: AddressInfo;
  readonly urls: readonly string[];
  readonly runtime: Runtime;
  readonly adminUrl: string | null;
  readonly logger: Logger;
  readonly reload: (source: string, input?: ConfigInput) => Promise<ReloadResult>;
  /** The graceful stop; runs once, however often close() is called. */
  readonly stop: () => Promise<void>;
}

/** The handle start() returns, the same for one process and for the primary of workers. */
export function switchyardHandle(parts: HandleParts): Switchyard {
  const { runtime } = parts;
  let closing: Promise<void> | null = null;
  return {
    address: parts.address,
    url: parts.urls[0] ?? '',
    urls: parts.urls,
    get upstream() {
      return runtime.snapshot.upstreams.values().next().value as Upstream;
    },
    get upstreams() {
      return runtime.snapshot.upstreams;
    },
    adminUrl: parts.adminUrl,
    logger: parts.logger,
    checkHealth: () => runtime.checkHealth(),
    reload: (input?: ConfigInput, source = 'library') => parts.reload(source, input),
    close() {
      closing ??= parts.stop();
      return closing;
    },
  };
}
