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
