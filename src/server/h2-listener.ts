import type http from 'node:http';
import type { ProxyContext } from '../proxy/context.js';
import { handleStream } from '../proxy/h2-admission.js';
import { H2Sessions, rapidResetLimit, rapidResetWindowMs } from './h2-sessions.js';
import { routeByAlpn, routeByPreface } from './protocol-switch.js';

/** HTTP/2 on a listener: on TLS offered by ALPN (`h2`), in cleartext accepted with prior knowledge (h2c). */
export interface Http2ListenerOptions {
  /** Streams a client may have open at once on one connection. */
  readonly maxConcurrentStreams: number;
}

/**
 * Gives `server` (the listener's node:http or node:https server) an HTTP/2 side: connections
 * that speak it are served by the returned sessions' streams, through the same request path.
 */
export function attachHttp2(server: http.Server, ctx: ProxyContext, options: Http2ListenerOptions, tls: boolean, idleTimeoutMs: number, headersTimeoutMs: number): H2Sessions {
  const sessions = new H2Sessions(
    {
      maxConcurrentStreams: options.maxConcurrentStreams,
      maxHeaderListBytes: ctx.limits.maxHeaderBytes,
      idleTimeoutMs,
      onRapidReset: (clientIp) => ctx.logger.warn({ client: clientIp, limit: rapidResetLimit, windowMs: rapidResetWindowMs }, `HTTP/2 connection from ${clientIp} closed (ENHANCE_YOUR_CALM): it cancelled more than ${rapidResetLimit} streams in ${rapidResetWindowMs / 1000} s (rapid reset)`),
    },
    (req, res) => handleStream(ctx, req, res),
  );
  const toH2 = sessions.accept.bind(sessions);
  if (tls) routeByAlpn(server, toH2);
  else routeByPreface(server, toH2, headersTimeoutMs, sessions.undecided);
  return sessions;
}
