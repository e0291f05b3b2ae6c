/** The command line (cli.ts loads it once V8's settings are in force). */
import { optionsFromFlags, parseArgs } from './args.js';
import { loadConfig } from './config/load.js';
import { parseWorkersFlag } from './config/process-schema.js';
import { ConfigError, ExitCodes } from './errors.js';
import { start, startFromConfig, version, type Switchyard } from './index.js';
import { guardStream, type LogOptions } from './log.js';
import { plural } from './units.js';

const usage = `Usage: switchyard --backends URL[,URL...] [options]
       switchyard --config FILE [--workers N|auto] [--log-level LEVEL] [--log-format FORMAT] [--access-log]
       switchyard validate FILE
       switchyard --demo

A load balancer and reverse proxy: round-robin and other balancers, health checks, safe retries,
hot reload, an admin API with Prometheus metrics and a live dashboard.

Configuration file (YAML or JSON; see README, "Configuration file"):
  --config FILE           start from FILE; the flags below that the file covers are then refused,
                          only --workers, --log-level, --log-format and --access-log may override it.
                          SIGHUP, POST /api/reload and saving the file reload it
  validate FILE           check FILE: prints "FILE: ok", or one FILE:LINE:COL line per problem (exit 2)

Options:
  --backends URL,...      backends to balance over (http:// or https://; a path is a prefix);
                          URL*WEIGHT gives a weight, e.g. http://a:8080*3 (quote it in a shell)
  --discover URI          find the backends instead: dns://NAME:PORT, dns+srv://NAME,
                          k8s://NAMESPACE/SERVICE:PORT or consul://SERVICE (docs/discovery.md)
  --balancer NAME         round-robin (default), weighted-round-robin, least-conn, p2c, ewma,
                          random, ip-hash, ring-hash or maglev
  --hash-key KEY          ring-hash/maglev key: client-ip (default), header:NAME, cookie:NAME, path
  --sticky                pin each client to a backend with a cookie (on top of --balancer)
  --sticky-cookie NAME    sticky cookie name (default swy; implies --sticky)
  --sticky-secret TEXT    HMAC secret for sticky cookies (default: random per process; set it so
                          cookies survive restarts and work across instances; implies --sticky)
  --sticky-ttl DUR        sticky cookie lifetime (default: session cookie; implies --sticky)
  --slow-start DUR        ramp a backend that comes up from 10% to full weight over DUR (default off)
  --max-in-flight N       attempts one backend may have in flight (default: no limit)
  --ewma-decay DUR        ewma: decay time of latency samples (default 10s)
  --port N                port to listen on (default 3030; 0 picks a free one)
  --host ADDR             address to bind (default: every interface)
  --health-interval DUR   time between health checks (default 20s for TCP, 2s for HTTP)
  --health-timeout DUR    a health check that has not passed by then fails (default 2s)
  --health-path PATH      HTTP health checks: GET PATH must answer 2xx/3xx (rise 2, fall 3,
                          every 2s unless --health-interval); default: TCP connect
  --retries N             retries on the same backend after a failed connection (default 3)
  --retry-delay DUR       pause before such a retry (default 10ms)
  --max-backends N        backends one request may try (default 3)
  --replay-buffer SIZE    request bodies up to SIZE are kept for replay (default 64KiB)
  --retry-on LIST         failures retried: connect, reset, timeout (default connect,reset)
  --retry-statuses LIST   backend statuses retried when a retry is possible, e.g. 502,503 (default none)
  --per-try-timeout DUR   time one attempt may wait for response headers (default: --timeout)
  --connect-timeout DUR   time to connect to a backend (default 5s)
  --timeout DUR           time a backend may take to answer, or pause mid-body (default 60s)
  --grace DUR             on SIGTERM/SIGINT, time in-flight requests get to finish (default 10s)
  --accept-batch N        connections accepted per event-loop turn at most (default 128)
  --workers N|auto        worker processes serving traffic (default 1: this process; auto: one
                          per core); see docs/workers.md
  --no-preserve-host      send the backend's host:port as Host instead of the client's
  --backend-ca FILE       PEM CAs that sign https backends' certificates (default: system roots);
                          more backend TLS settings (servername, mTLS) in a config file
  --backend-protocol P    http1 (default), h2 (HTTP/2 over TLS by ALPN) or h2c (HTTP/2 cleartext)
  --tls-cert FILE --tls-key FILE
                          serve HTTPS with this PEM certificate and key; repeat the pair for more
                          certificates (chosen by SNI; the first also serves clients without SNI)
  --no-http2              with --tls-cert: offer HTTP/1.1 only (default: h2 too, by ALPN)
  --h2c                   cleartext: also accept HTTP/2 with prior knowledge on the port
  --admin [HOST:]PORT     admin API, metrics and dashboard (default 127.0.0.1:9901; a host other
                          than loopback needs SWITCHYARD_ADMIN_TOKEN); --admin off or --no-admin
  --access-log            log one line per request (info level)
  --trusted-proxies LIST  peers (IPs, CIDRs) whose X-Forwarded-* and Forwarded fields are kept
                          and appended to; from others they are replaced (default: none)
  --max-header-size SIZE  request line + headers above SIZE get 431 (default 16KiB)
  --request-timeout DUR   the whole request, body included, must arrive within DUR, else 408
                          (default 0: off, so long uploads pass)
  --max-connections N     client connections open at once; more are closed at once (default 10000)
  --max-body-size SIZE    request bodies above SIZE get 413 (default 0: no limit)
  --ambiguous-paths MODE  reject (default: 400) or keep paths with %2F, %5C, \\ or %2e%2e segments
  --log-level LEVEL       debug, info, warn, error or silent (default info)
  --log-format FORMAT     json or pretty (default: pretty on a terminal, json otherwise)
  --demo                  start three demo backends and balance over them
  -h, --help              show this help
  -v, --version           show the version

Durations: 500ms, 2s, 1m. Sizes: 65536, 64KiB, 1MiB. Flags take "--flag value" or "--flag=value";
single-dash spellings (-backends, -port) work as in the original Go tool.
`;

/** Where each flag's setting lives in a config file, for the "--port conflicts with --config" line. */
const configPathOfFlag: Readonly<Record<string, string>> = {
  backends: 'upstreams.NAME.backends', discover: 'upstreams.NAME.discover', balancer: 'upstreams.NAME.balancer', 'hash-key': 'upstreams.NAME.hashKey',
  sticky: 'upstreams.NAME.sticky', 'sticky-cookie': 'upstreams.NAME.sticky.cookie', 'sticky-secret': 'upstreams.NAME.sticky.secret',
  'sticky-ttl': 'upstreams.NAME.sticky.ttl', 'slow-start': 'upstreams.NAME.slowStart', 'max-in-flight': 'upstreams.NAME.maxInFlight',
  'ewma-decay': 'upstreams.NAME.ewmaDecay', port: 'listeners[0].port', host: 'listeners[0].host',
  'health-interval': 'upstreams.NAME.healthCheck.interval', 'health-timeout': 'upstreams.NAME.healthCheck.timeout',
  'health-path': 'upstreams.NAME.healthCheck.path',
  retries: 'upstreams.NAME.retry.retriesPerBackend', 'retry-delay': 'upstreams.NAME.retry.retryDelay',
  'max-backends': 'upstreams.NAME.retry.maxBackends', 'replay-buffer': 'upstreams.NAME.retry.replayBuffer',
  'retry-on': 'upstreams.NAME.retry.retryOn', 'retry-statuses': 'upstreams.NAME.retry.retryStatuses',
  'per-try-timeout': 'upstreams.NAME.retry.perTryTimeout',
  'connect-timeout': 'upstreams.NAME.timeouts.connect', timeout: 'upstreams.NAME.timeouts.upstream', grace: 'gracePeriod',
  'accept-batch': 'listeners[0].acceptBatch', 'no-preserve-host': 'upstreams.NAME.preserveHost', 'backend-ca': 'upstreams.NAME.tls.ca', 'backend-protocol': 'upstreams.NAME.protocol',
  'tls-cert': 'listeners[0].tls', 'tls-key': 'listeners[0].tls', h2c: 'listeners[0].h2c', 'no-http2': 'listeners[0].http2',
  admin: 'admin', 'no-admin': 'admin',
  'trusted-proxies': 'listeners[0].trustedProxies', 'max-header-size': 'listeners[0].maxHeaderSize',
  'request-timeout': 'listeners[0].requestTimeout', 'max-connections': 'listeners[0].maxConnections',
  'max-body-size': 'listeners[0].maxBodySize', 'ambiguous-paths': 'listeners[0].ambiguousPaths',
};
/** The flag whose value a config path (as flags build it: upstream `default`, listener 0) came from. */
function flagOfConfigPath(path: string): string | undefined {
  let found: string | undefined;
  let foundLength = -1;
  for (const [flag, where] of Object.entries(configPathOfFlag)) {
    const configPath = where.replace('upstreams.NAME.', 'upstreams.default.').replace('listeners[0].', 'listeners.0.');
    if ((path === configPath || path.startsWith(`${configPath}.`)) && configPath.length > foundLength) {
      found = flag;
      foundLength = configPath.length;
    }
  }
  return found;
}

/** A start() error about a config path, reworded to name the flag that set it (`--hash-key: …`). */
function namedByFlag(err: unknown): unknown {
  if (!(err instanceof ConfigError)) return err;
  const match = /^([\w.]+): ([\s\S]*)$/.exec(err.message);
  const flag = match === null ? undefined : flagOfConfigPath(match[1] as string);
  return flag === undefined ? err : new ConfigError(`--${flag}: ${match?.[2] ?? ''}`, { cause: err });
}

const flagsOverridingConfig: readonly string[] = ['config', 'log-level', 'log-format', 'access-log', 'workers'];

/** Prints a config file's problems, one FILE:LINE:COL line each, and exits 2. */
function failConfigFile(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exit(ExitCodes.usage);
}

/** `switchyard validate FILE`. */
function validate(args: readonly string[]): void {
  const file = args[0];
  if (file === undefined || args.length > 1) fail('usage: switchyard validate FILE', ExitCodes.usage);
  try {
    loadConfig(file);
  } catch (err) {
    failConfigFile(err);
  }
  process.stdout.write(`${file}: ok\n`);
}

/** Starts from --config FILE, with --log-level/--log-format/--access-log on top; other flags conflict. */
async function startWithConfigFile(flags: ReadonlyMap<string, string>, file: string): Promise<Switchyard> {
  for (const name of flags.keys()) {
    if (flagsOverridingConfig.includes(name)) continue;
    const where = configPathOfFlag[name];
    throw new ConfigError(`--${name} conflicts with --config${where === undefined ? '' : ` (set ${where} in the file)`}`);
  }
  try {
    loadConfig(file);
  } catch (err) {
    failConfigFile(err);
  }
  const fromFlags = optionsFromFlags(new Map([...flags, ['backends', 'http://unused']]));
  const log = fromFlags.log as LogOptions;
  const workers = flags.get('workers');
  return startFromConfig({ file }, { log, accessLog: flags.has('access-log'), ...(workers === undefined ? {} : { workers: parseWorkersFlag(workers) }) });
}

function fail(message: string, code: number): never {
  process.stderr.write(`switchyard: ${message}\n`);
  process.exit(code);
}

async function main(argv: readonly string[]): Promise<void> {
  // A closed pipe (`switchyard … | head -1`) or a full disk must not crash us: see guardStream.
  guardStream(process.stdout, 'log output (stdout)');
  guardStream(process.stderr);
  if (argv[0] === 'validate') return validate(argv.slice(1));
  const { flags } = parseArgs(argv);
  if (flags.has('help')) {
    process.stdout.write(usage);
    return;
  }
  if (flags.has('version')) {
    process.stdout.write(`switchyard ${version}\n`);
    return;
  }
  let stopDemo: (() => Promise<void>) | null = null;
  let lb: Switchyard;
  const configFile = flags.get('config');
  if (configFile !== undefined) {
    lb = await startWithConfigFile(flags, configFile);
  } else if (flags.has('demo')) {
    const { startDemoBackends } = await import('./demo.js');
    const demo = await startDemoBackends(3);
    stopDemo = demo.close;
    const withBackends = new Map(flags);
    withBackends.set('backends', demo.urls.join(','));
    const options = optionsFromFlags(withBackends);
    lb = await start(options).catch(async (err: unknown) => {
      await demo.close();
      throw namedByFlag(err);
    });
    process.stdout.write(
      `\nSwitchyard demo: ${lb.url} balances over ${plural(options.backends?.length ?? 0, 'demo backend')}.\n` +
        `  Try:  curl ${lb.url}/          (repeat it: each backend answers with its own name)\n` +
        `        for i in 1 2 3 4 5 6; do curl -s ${lb.url}/; done\n` +
        (lb.adminUrl === null ? '' : `  Dashboard: ${lb.adminUrl}/   API: ${lb.adminUrl}/api/upstreams   Metrics: ${lb.adminUrl}/metrics\n`) +
        `  Stop with Ctrl-C.\n\n`,
    );
  } else {
    lb = await start(optionsFromFlags(flags)).catch((err: unknown) => {
      throw namedByFlag(err);
    });
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      lb.logger.warn(`second ${signal}: exiting now`);
      process.exit(ExitCodes.failure);
    }
    stopping = true;
    lb.logger.info(`${signal} received: finishing in-flight requests`);
    lb.close()
      .then(() => stopDemo?.())
      .then(
        () => {
          lb.logger.info('stopped');
          lb.logger.flush?.();
          process.exit(ExitCodes.ok);
        },
        (err: unknown) => fail(`error while stopping: ${(err as Error).message}`, ExitCodes.failure),
      );
  };
  process.on('SIGHUP', () => {
    lb.logger.info('SIGHUP received: reloading the config');
    void lb.reload(undefined, 'signal');
  });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof ConfigError) fail(err.message, ExitCodes.usage);
  fail(`failed to start: ${(err as Error).message ?? String(err)}`, ExitCodes.failure);
});
