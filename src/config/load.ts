import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { StartOptions } from '../index.js';
import { configSchema, type Config } from './schema.js';

type PathKey = string | number;

/** Where a problem is: the node at `path`, or the nearest ancestor that exists (a missing field points at its parent). */
function offsetOf(doc: Document, path: readonly PathKey[], atKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = (node as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const key = path[i];
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(key));
      keyNode = pair?.key;
      next = pair?.value;
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
    }
    const last = i === path.length - 1;
    if (last && atKey && keyNode !== undefined) return (keyNode as Node).range?.[0] ?? offset;
    if (next === undefined || next === null) return keyNode !== undefined ? ((keyNode as Node).range?.[0] ?? offset) : offset;
    node = next;
    offset = (node as Node).range?.[0] ?? offset;
  }
  return offset;
}

/** One line per problem: `FILE:LINE:COL path.to.field: what is wrong`. */
function issueLines(file: string, doc: Document, lines: LineCounter, issues: readonly z.core.$ZodIssue[]): string[] {
  const out: string[] = [];
  const at = (path: readonly PathKey[], atKey: boolean, message: string): void => {
    const pos = lines.linePos(offsetOf(doc, path, atKey));
    const shown = path.length === 0 ? '(top level)' : path.join('.');
    out.push(`${file}:${pos.line}:${pos.col} ${shown}: ${message}`);
  };
  for (const issue of issues) {
    const path = issue.path.filter((p): p is PathKey => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      const messages = issue.message.split('\n');
      issue.keys.forEach((key, i) => at([...path, key], true, messages[i] ?? `unknown key "${key}"`));
    } else if (issue.code === 'invalid_union') {
      // A union's branches each explain themselves; the most specific branch (deepest path) is the useful one.
      const branches = issue.errors.map((branch) => branch.filter((e) => e.code !== 'invalid_type' || e.path.length > 0));
      const best = branches.find((b) => b.length > 0 && b.every((e) => e.path.length > 0)) ?? branches.find((b) => b.length > 0);
      if (best === undefined) at(path, false, issue.message);
      else for (const line of issueLines(file, doc, lines, best.map((e) => ({ ...e, path: [...path, ...e.path] }) as z.core.$ZodIssue))) out.push(line);
    } else if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
      at(path, false, `required ${issue.expected === 'string' ? 'text' : issue.expected} is missing`);
    } else {
      at(path, false, issue.message);
    }
  }
  return out;
}

/** Fills in what the schema cannot: with no routes, everything goes to the only upstream. */
function withDefaults(config: Config): Config {
  const names = Object.keys(config.upstreams);
  if (config.routes.length > 0 || names.length !== 1) return config;
  return { ...config, routes: [{ upstream: names[0] as string }] };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses and validates config text (YAML or JSON, which is YAML too). `file` names the source in
 * error lines. Throws a ConfigError with one `FILE:LINE:COL path: problem` line per problem.
 */
export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((err) => {
      const pos = lines.linePos(err.pos[0]);
      return `${file}:${pos.line}:${pos.col} ${err.message.split('\n')[0] ?? err.code}`;
    });
    throw new ConfigError(problems.join('\n'));
  }
  const data: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(data);
  if (!result.success) {
    // In file order: line, then column.
    const position = (line: string): number[] => line.slice(file.length + 1).split(' ')[0]?.split(':').map(Number) ?? [];
    const sorted = issueLines(file, doc, lines, result.error.issues).sort((a, b) => {
      const [al = 0, ac = 0] = position(a);
      const [bl = 0, bc = 0] = position(b);
      return al - bl || ac - bc;
    });
    throw new ConfigError(sorted.join('\n'));
  }
  return deepFreeze(withDefaults(result.data));
}

/** Reads and validates a config file (`.yaml`, `.yml` or `.json`); see parseConfig. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseConfig(text, file);
}

type StickyConfig = { readonly cookie: string; readonly secret?: string | undefined; readonly ttl?: number | undefined };

function stickyOptions(sticky: StickyConfig): NonNullable<StartOptions['sticky']> {
  return { cookie: sticky.cookie, ...(sticky.secret === undefined ? {} : { secret: sticky.secret }), ...(sticky.ttl === undefined ? {} : { ttlMs: sticky.ttl }) };
}

/**
 * Maps a config with one listener and one upstream onto start() options. Several listeners,
 * upstreams or routes are valid in a file but the runtime for them is future work (issue 4).
 */
export function configToStartOptions(config: Config): StartOptions {
  const names = Object.keys(config.upstreams);
  const route = config.routes[0];
  if (config.listeners.length !== 1 || names.length !== 1 || config.routes.length !== 1 || route?.host !== undefined || route?.pathPrefix !== undefined) {
    throw new ConfigError('more than one listener, upstream or route (or a route with host/pathPrefix) is not supported yet: use one listener and one upstream');
  }
  const listener = config.listeners[0] as Config['listeners'][number];
  const upstream = config.upstreams[names[0] as string] as Config['upstreams'][string];
  const sticky = upstream.sticky === false ? undefined : upstream.sticky === true ? { cookie: 'swy' } : upstream.sticky;
  return {
    backends: upstream.backends.map((b) => (typeof b === 'string' ? { url: b, weight: 1 } : b)),
    port: listener.port,
    ...(listener.host === undefined ? {} : { host: listener.host }),
    balancer: upstream.balancer,
    hashKey: upstream.hashKey,
    ...(sticky === undefined ? {} : { sticky: stickyOptions(sticky) }),
    slowStartMs: upstream.slowStart,
    ...(upstream.maxInFlight === undefined ? {} : { maxInFlight: upstream.maxInFlight }),
    ewmaDecayMs: upstream.ewmaDecay,
    healthIntervalMs: upstream.healthCheck.interval,
    healthTimeoutMs: upstream.healthCheck.timeout,
    retry: {
      retriesPerBackend: upstream.retry.retriesPerBackend,
      retryDelayMs: upstream.retry.retryDelay,
      maxBackends: upstream.retry.maxBackends,
      replayBufferBytes: upstream.retry.replayBuffer,
    },
    connectTimeoutMs: upstream.timeouts.connect,
    upstreamTimeoutMs: upstream.timeouts.upstream,
    upstreamKeepAliveMs: upstream.timeouts.upstreamKeepAlive,
    clientKeepAliveMs: listener.clientKeepAlive,
    clientHeadersTimeoutMs: listener.clientHeadersTimeout,
    acceptBatch: listener.acceptBatch,
    trustedProxies: listener.trustedProxies,
    maxHeaderBytes: listener.maxHeaderSize,
    requestTimeoutMs: listener.requestTimeout,
    maxConnections: listener.maxConnections,
    maxBodyBytes: listener.maxBodySize,
    gracePeriodMs: config.gracePeriod,
    preserveHost: upstream.preserveHost,
    log: { level: config.log.level, ...(config.log.format === undefined ? {} : { format: config.log.format }) },
  };
}
