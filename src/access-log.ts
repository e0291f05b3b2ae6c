import type { RequestEvent } from './events.js';
import type { Logger } from './log.js';

/**
 * One access-log line per finished request. Called only when the access log is on, so a
 * disabled log costs the request path one null check.
 */
export function writeAccessLog(logger: Logger, event: RequestEvent): void {
  logger.info(
    {
      access: true,
      client: event.clientIp,
      method: event.method,
      protocol: `HTTP/${event.httpVersion}`,
      host: event.host,
      path: event.path,
      status: event.status,
      upstream: event.upstream,
      backend: event.backend === null ? null : event.backend.url,
      attempts: event.attempts,
      durationMs: Math.round(event.durationMs * 100) / 100,
      bytes: event.bytesSent,
      outcome: event.outcome,
    },
    `${event.method} ${event.path} ${event.status === 0 ? '-' : event.status}`,
  );
}

/** What the access log says of a WebSocket tunnel when it closes. */
export interface TunnelLogEntry {
  readonly clientIp: string;
  readonly host: string;
  readonly path: string;
  readonly upstream: string;
  readonly backend: string;
  readonly durationMs: number;
  /** Client to backend, and backend to client, after the handshake. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

export function writeTunnelLog(logger: Logger, entry: TunnelLogEntry): void {
  logger.info(
    { access: true, tunnel: true, ...entry, method: 'GET', status: 101, durationMs: Math.round(entry.durationMs * 100) / 100, outcome: 'closed' },
    `GET ${entry.path} 101 tunnel closed`,
  );
}
