import { balancerNames, didYouMean } from './config/schema.js';
import { parseDiscoverUri } from './discovery/uri.js';
import { ConfigError } from './errors.js';
import type { StartOptions } from './index.js';
import type { LogFormat, LogLevel } from './log.js';
import { parseHashKey } from './upstream/hash-key.js';
import { parseWorkersFlag } from './config/process-schema.js';
import { retryOutcomes, type RetryOutcome } from './upstream/retry-options.js';
import { trustedProxyProblem } from './proxy/trusted.js';
import { parseDurationMs, parseSizeBytes } from './units.js';
import { backendProtocolFlag, checkedCaFile } from './backend-flags.js';
import { certificatesFromFlags } from './tls-flags.js';

/** Command-line flags: what each one takes, and how they become start() options. */
type FlagKind = 'value' | 'switch' | 'repeat';
const flagKinds: Readonly<Record<string, FlagKind>> = {
  backends: 'value',
  discover: 'value',
  balancer: 'value',
  'hash-key': 'value',
  sticky: 'switch',
  'sticky-cookie': 'value',
  'sticky-secret': 'value',
  'sticky-ttl': 'value',
  'slow-start': 'value',
  'max-in-flight': 'value',
  'ewma-decay': 'value',
  port: 'value',
  host: 'value',
  'health-interval': 'value',
  'health-timeout': 'value',
  'health-path': 'value',
  retries: 'value',
  'retry-delay': 'value',
  'max-backends': 'value',
  'replay-buffer': 'value',
  'retry-on': 'value',
  'retry-statuses': 'value',
  'per-try-timeout': 'value',
  'connect-timeout': 'value',
  timeout: 'value',
  grace: 'value',
  'accept-batch': 'value',
  workers: 'value',
  'trusted-proxies': 'value',
  'max-header-size': 'value',
  'request-timeout': 'value',
  'max-connections': 'value',
  'max-body-size': 'value',
  'ambiguous-paths': 'value',
  'no-preserve-host': 'switch',
  'backend-ca': 'value',
  'backend-protocol': 'value',
  'tls-cert': 'repeat',
  'tls-key': 'repeat',
  h2c: 'switch',
  'no-http2': 'switch',
  'log-level': 'value',
  'log-format': 'value',
  config: 'value',
  admin: 'value',
  'no-admin': 'switch',
  'access-log': 'switch',
  demo: 'switch',
  help: 'switch',
  version: 'switch',
};
const shortFlags: Readonly<Record<string, string>> = { h: 'help', v: 'version' };

export interface ParsedArgs {
  readonly flags: ReadonlyMap<string, string>;
}

/** Splits argv into flags; a ConfigError names the first bad one. */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const match = /^--?([a-zA-Z][a-zA-Z0-9-]*)(?:=([\s\S]*))?$/.exec(arg);
    if (match === null) throw new ConfigError(`unexpected argument "${arg}" (see --help)`);
    const name = shortFlags[match[1] as string] ?? (match[1] as string);
    const kind = flagKinds[name];
    if (kind === undefined) throw new ConfigError(`unknown flag ${arg.split('=')[0]} (see --help)`);
    let value = match[2];
    if (kind === 'switch') {
      if (value !== undefined && value !== 'true') throw new ConfigError(`--${name} takes no value`);
      value = 'true';
    } else if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new ConfigError(`--${name} needs a value (see --help)`);
      value = next;
      i++;
    }
    // A repeatable flag keeps its values in order, one per line.
    const before = flags.get(name);
    if (before !== undefined && kind !== 'repeat') throw new ConfigError(`--${name} is given twice`);
    flags.set(name, before === undefined ? value : `${before}\n${value}`);
  }
  return { flags };
}

/** A comma-separated flag value, empty items dropped. */
function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function retryOutcome(name: string): RetryOutcome {
  if (!(retryOutcomes as readonly string[]).includes(name)) throw new ConfigError(`--retry-on: "${name}" is not one of ${retryOutcomes.join(', ')}`);
  return name as RetryOutcome;
}

function integer(text: string, what: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${what}: "${text}" must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/**
 * One `--backends` entry: a URL, optionally followed by `*WEIGHT` (`http://a:8080*3`). A star
 * cannot appear in a host or port, so it is never mistaken for part of the URL.
 */
export function parseBackendEntry(text: string): { url: string; weight: number } {
  const star = text.lastIndexOf('*');
  if (star === -1) return { url: text, weight: 1 };
  const weightText = text.slice(star + 1);
  const weight = Number(weightText);
  if (!/^\d+(\.\d+)?$/.test(weightText) || !(weight > 0)) {
    throw new ConfigError(`backend "${text}": weight "${weightText}" must be a positive number (URL*WEIGHT)`);
  }
  return { url: text.slice(0, star), weight };
}

/** `--trusted-proxies CIDR,CIDR`: each entry checked here, so a bad one is named with the flag. */
function trustedProxyList(text: string): string[] {
  const entries = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const entry of entries) {
    const problem = trustedProxyProblem(entry);
    if (problem !== null) throw new ConfigError(`--trusted-proxies: "${entry}" is not an IP address or CIDR range: ${problem}`);
  }
  return entries;
}

/** Flags whose setting is off at 0, so `0`, `0s` and `0ms` are accepted as in the file. */
const offWhenZero: ReadonlySet<string> = new Set(['slow-start', 'retry-delay', 'per-try-timeout', 'request-timeout']);

/** Runs a parser whose ConfigError does not name the flag, and names it. */
function withFlag<T>(name: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${name}: ${err.message}`, { cause: err });
    throw err;
  }
}

const logLevels: readonly string[] = ['debug', 'info', 'warn', 'error', 'silent'];
const logFormats: readonly string[] = ['json', 'pretty'];

/** `--admin [HOST:]PORT` or `off`, `--no-admin`; default 127.0.0.1:9901. */
export function adminFromFlags(text: string | undefined, off: boolean): false | { host: string; port: number } {
  if (off || text === 'off' || text === 'false') {
    if (off && text !== undefined) throw new ConfigError('--admin and --no-admin contradict each other');
    return false;
  }
  if (text === undefined) return { host: '127.0.0.1', port: 9901 };
  const colon = text.lastIndexOf(':');
  const host = colon === -1 ? '127.0.0.1' : text.slice(0, colon).replace(/^\[|\]$/g, '');
  if (host === '') throw new ConfigError(`--admin: "${text}" has no host (use HOST:PORT, PORT or off)`);
  return { host, port: integer(colon === -1 ? text : text.slice(colon + 1), '--admin port', 0, 65535) };
}

/** Turns parsed flags into start() options. */
export function optionsFromFlags(flags: ReadonlyMap<string, string>): StartOptions {
  const backendsText = flags.get('backends') ?? '';
  const backends = backendsText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(parseBackendEntry);
  const discover = flags.get('discover');
  if (backends.length === 0 && discover === undefined) throw new ConfigError('no backends: give --backends URL[,URL...] or --discover URI (see --help)');
  const flag = (name: string): string | undefined => flags.get(name);
  const duration = (name: string): number | undefined => {
    const text = flag(name);
    return text === undefined ? undefined : parseDurationMs(text, `--${name}`, offWhenZero.has(name));
  };
  const retry: Record<string, unknown> = {};
  const retries = flag('retries');
  if (retries !== undefined) retry['retriesPerBackend'] = integer(retries, '--retries', 0, 100);
  const retryDelay = duration('retry-delay');
  if (retryDelay !== undefined) retry['retryDelayMs'] = retryDelay;
  const maxBackends = flag('max-backends');
  if (maxBackends !== undefined) retry['maxBackends'] = integer(maxBackends, '--max-backends', 1, 1000);
  const replay = flag('replay-buffer');
  if (replay !== undefined) retry['replayBufferBytes'] = parseSizeBytes(replay, '--replay-buffer');
  const retryOn = flag('retry-on');
  if (retryOn !== undefined) retry['retryOn'] = list(retryOn).map((name) => retryOutcome(name));
  const retryStatuses = flag('retry-statuses');
  if (retryStatuses !== undefined) retry['retryStatuses'] = list(retryStatuses).map((code) => integer(code, '--retry-statuses', 400, 599));
  const perTryTimeout = duration('per-try-timeout');
  if (perTryTimeout !== undefined) retry['perTryTimeoutMs'] = perTryTimeout;

  const level = flag('log-level');
  if (level !== undefined && !logLevels.includes(level)) throw new ConfigError(`--log-level: "${level}" is not one of ${logLevels.join(', ')}`);
  const format = flag('log-format');
  if (format !== undefined && !logFormats.includes(format)) throw new ConfigError(`--log-format: "${format}" is not one of ${logFormats.join(', ')}`);

  const options: Record<string, unknown> = {
    ...(discover === undefined ? { backends } : { discover: parseDiscoverUri(discover), ...(backends.length === 0 ? {} : { backends }) }),
    port: flag('port') === undefined ? 3030 : integer(flag('port') as string, '--port', 0, 65535),
    retry,
    preserveHost: !flags.has('no-preserve-host'),
    log: { ...(level === undefined ? {} : { level: level as LogLevel }), ...(format === undefined ? {} : { format: format as LogFormat }) },
  };
  const set = (key: string, value: unknown): void => {
    if (value !== undefined) options[key] = value;
  };
  set('host', flag('host'));
  const backendCa = flag('backend-ca');
  if (backendCa !== undefined) options['backendTls'] = { ca: checkedCaFile(backendCa) };
  set('backendProtocol', backendProtocolFlag(flag('backend-protocol')));
  if (flags.has('tls-cert') || flags.has('tls-key')) options['tls'] = { certificates: certificatesFromFlags(flag('tls-cert'), flag('tls-key')) };
  if (flags.has('h2c')) options['h2c'] = true;
  if (flags.has('no-http2')) options['http2'] = false;
  set('healthIntervalMs', duration('health-interval'));
  set('healthTimeoutMs', duration('health-timeout'));
  set('healthPath', flag('health-path'));
  set('connectTimeoutMs', duration('connect-timeout'));
  set('upstreamTimeoutMs', duration('timeout'));
  set('gracePeriodMs', duration('grace'));
  const balancer = flag('balancer');
  if (balancer !== undefined && !(balancerNames as readonly string[]).includes(balancer)) {
    throw new ConfigError(`--balancer: "${balancer}" is not one of ${balancerNames.join(', ')}${didYouMean(balancer, balancerNames)}`);
  }
  set('balancer', balancer);
  const hashKey = flag('hash-key');
  if (hashKey !== undefined) options['hashKey'] = withFlag('--hash-key', () => parseHashKey(hashKey));
  set('slowStartMs', duration('slow-start'));
  set('ewmaDecayMs', duration('ewma-decay'));
  const maxInFlight = flag('max-in-flight');
  if (maxInFlight !== undefined) options['maxInFlight'] = integer(maxInFlight, '--max-in-flight', 1, 1_000_000);
  if (flags.has('sticky') || flags.has('sticky-cookie') || flags.has('sticky-secret') || flags.has('sticky-ttl')) {
    const sticky: Record<string, unknown> = {};
    const cookie = flag('sticky-cookie');
    if (cookie !== undefined) sticky['cookie'] = cookie;
    const secret = flag('sticky-secret');
    if (secret !== undefined) sticky['secret'] = secret;
    const ttl = duration('sticky-ttl');
    if (ttl !== undefined) sticky['ttlMs'] = ttl;
    options['sticky'] = sticky;
  }
  options['admin'] = adminFromFlags(flag('admin'), flags.has('no-admin'));
  if (flags.has('access-log')) options['accessLog'] = true;
  if (flags.has('workers')) options['workers'] = parseWorkersFlag(flag('workers') as string);
  const acceptBatch = flag('accept-batch');
  if (acceptBatch !== undefined) options['acceptBatch'] = integer(acceptBatch, '--accept-batch', 1, 1024);
  const trustedProxies = flag('trusted-proxies');
  if (trustedProxies !== undefined) options['trustedProxies'] = trustedProxyList(trustedProxies);
  const maxHeaderSize = flag('max-header-size');
  if (maxHeaderSize !== undefined) options['maxHeaderBytes'] = parseSizeBytes(maxHeaderSize, '--max-header-size');
  const requestTimeout = flag('request-timeout');
  if (requestTimeout !== undefined) options['requestTimeoutMs'] = duration('request-timeout');
  const maxConnections = flag('max-connections');
  if (maxConnections !== undefined) options['maxConnections'] = integer(maxConnections, '--max-connections', 1, 10_000_000);
  const maxBodySize = flag('max-body-size');
  if (maxBodySize !== undefined) options['maxBodyBytes'] = parseSizeBytes(maxBodySize, '--max-body-size');
  const ambiguousPaths = flag('ambiguous-paths');
  if (ambiguousPaths !== undefined && ambiguousPaths !== 'reject' && ambiguousPaths !== 'keep') {
    throw new ConfigError(`--ambiguous-paths: "${ambiguousPaths}" is not reject or keep`);
  }
  if (ambiguousPaths !== undefined) options['ambiguousPaths'] = ambiguousPaths;
  return options as unknown as StartOptions;
}
