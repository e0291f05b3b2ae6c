import { listenerSchema, type Config } from './config/schema.js';
import { ConfigError } from './errors.js';
import type { ListenerOptions } from './server/listener.js';
import type { TlsTermination } from './server/tls-server.js';

/** Listener settings across reloads: identity, options, listen errors, and what a reload cannot change. */

export type ListenerConfig = Config['listeners'][number];

/**
 * Settings of a listener that stays open across a reload are fixed when it opens (the node:http
 * server, its connection limit and the proxy context are built from them): every field but host
 * and port, its identity (changing them opens a new listener instead), and `tls`, whose
 * certificates a reload swaps in (turning TLS on or off still needs a restart).
 */
const listenerFieldsFixedAtOpen = (Object.keys(listenerSchema.shape) as (keyof ListenerConfig)[]).filter((field) => field !== 'host' && field !== 'port' && field !== 'tls');

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
    if ((listener.tls === undefined) !== (opened.tls === undefined)) ignored.push(`listeners[${i}].tls`);
  });
  if (next.admin === false || started.admin === false) {
    if (next.admin !== started.admin) ignored.push('admin');
  } else {
    for (const field of ['host', 'port', 'token'] as const) if (next.admin[field] !== started.admin[field]) ignored.push(`admin.${field}`);
  }
  if (next.log.format !== started.log.format) ignored.push('log.format');
  if (next.watch !== started.watch) ignored.push('watch');
  if (next.workers !== started.workers) ignored.push('workers');
  return ignored;
}

/** A listener's identity across reloads: host and port; port-0 listeners also by position. */
export function listenerKey(listener: ListenerConfig, index: number): string {
  return `${listener.host ?? '*'}|${listener.port}${listener.port === 0 ? `#${index}` : ''}`;
}

export function listenerOptions(listener: ListenerConfig, tls: TlsTermination | null): ListenerOptions {
  return {
    port: listener.port,
    host: listener.host,
    keepAliveTimeoutMs: listener.clientKeepAlive,
    headersTimeoutMs: listener.clientHeadersTimeout,
    backlog: 4096,
    acceptBatch: listener.acceptBatch,
    tls,
  };
}

/** Turns listen errors into one-line ConfigErrors. */
export function listenError(err: unknown, listener: ListenerConfig): unknown {
  const code = (err as { code?: string }).code;
  if (code === 'EADDRINUSE') return new ConfigError(`port ${listener.port} is already in use`, { cause: err });
  if (code === 'EACCES') return new ConfigError(`no permission to listen on port ${listener.port}`, { cause: err });
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return new ConfigError(`cannot listen on address ${listener.host}`, { cause: err });
  return err;
}
