import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { handleRequest } from '../proxy/admission.js';
import { handleUpgrade } from '../proxy/tunnel-admission.js';
import { tunnelFilteringMessage } from '../proxy/tunnel-request.js';
import type { ProxyContext } from '../proxy/context.js';
import { listenBatched, type AcceptMode } from './accept-fds.js';
import { attachHttp2, type Http2ListenerOptions } from './h2-listener.js';
import type { H2Sessions } from './h2-sessions.js';
import { continueUnlessTooLarge, limitConnections, serverLimitOptions, type ConnectionCount } from './limits.js';
import { createListenerServer, type TlsTermination } from './tls-server.js';
import { installFastPath, type FastPath } from './h1/fast-path.js';

export interface ListenerOptions {
  /** Port to listen on; 0 picks a free one. */
  readonly port: number;
  /** Address to bind; undefined means every interface. */
  readonly host: string | undefined;
  /** Idle time after which a client's keep-alive connection is closed. */
  readonly keepAliveTimeoutMs: number;
  /** Time a client has to send its request headers (slowloris guard). */
  readonly headersTimeoutMs: number;
  /** Pending connections the kernel queues for us. */
  readonly backlog: number;
  /** Connections accepted per event-loop turn at most (descriptors on the listening socket). */
  readonly acceptBatch: number;
  /** TLS termination (an HTTPS listener), or null for cleartext HTTP. */
  readonly tls: TlsTermination | null;
  /** How extra accepts are made; default: the platform's best (accept-fds.ts). */
  readonly acceptMode?: AcceptMode;
  /** HTTP/2 beside HTTP/1.1 (h2 by ALPN with TLS, h2c with prior knowledge without); null or absent: HTTP/1.1 only. */
  readonly http2?: Http2ListenerOptions | null;
}

const rejections = {
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  default: 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
} as const;

/**
 * Answers a request llhttp refused (smuggling, malformed framing, oversized or slow headers,
 * RFC 9112 section 11.2) with 400, 431 or 408 and closes; never throws, other connections go on.
 */
function onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
  // A response already under way (a body failed mid-stream) cannot be replaced: just cut it.
  const inFlight = (socket as net.Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
  if (!socket.writable || (inFlight != null && inFlight.headersSent)) {
    socket.destroy();
    return;
  }
  const code = err.code;
  const head = code === 'HPE_HEADER_OVERFLOW' ? rejections.HPE_HEADER_OVERFLOW : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? rejections.ERR_HTTP_REQUEST_TIMEOUT : rejections.default;
  socket.end(head);
}

/** CONNECT (authority-form) would make us a forward proxy, which we are not: 400 and close. */
function onConnectMethod(_req: http.IncomingMessage, socket: net.Socket): void {
  if (socket.writable) socket.end(rejections.default);
  else socket.destroy();
}

/**
 * On close, idle keep-alive connections stay open this long before they are closed: a client
 * may already have sent its next request on one (RFC 9112 section 9.6), and that request is
 * then served, with `Connection: close`, instead of being cut unanswered.
 */
const idleLingerMs = 250;

/** One HTTP listener feeding the proxy handler, with a graceful close. */
export class Listener {
  private readonly server: http.Server;
  private readonly ctx: ProxyContext;
  private readonly options: ListenerOptions;
  private extraListeners: net.Server[] = [];
  /** Requests that arrived while listen() was still setting up; served once it is done. */
  private held: [http.IncomingMessage, http.ServerResponse][] | null = [];
  /** Client connections open now, busy or idle (counted by the connection limit). */
  private readonly connections: ConnectionCount;
  /** The HTTP/2 sessions, when the listener speaks HTTP/2 (h2-listener.ts). */
  private readonly h2: H2Sessions | null;
  /** The own HTTP/1.1 path of a cleartext HTTP/1.1 listener (h1/fast-path.ts); null: node:http serves all. */
  private readonly fast: FastPath | null;

  constructor(ctx: ProxyContext, options: ListenerOptions) {
    this.ctx = ctx;
    this.options = options;
    const serve = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      if (this.held === null) handleRequest(ctx, req, res);
      else this.held.push([req, res]);
    };
    this.server = createListenerServer(
      {
        keepAliveTimeout: options.keepAliveTimeoutMs,
        noDelay: true,
        // Only WebSocket handshakes reach the 'upgrade' listener; h2c and others are plain requests.
        IncomingMessage: tunnelFilteringMessage(http.IncomingMessage),
        // headersTimeout, maxHeaderSize and requestTimeout (0 by default: a 1 GiB upload must not
        // hit a total-time cap) from the listener's limits.
        ...serverLimitOptions(ctx.limits, options.headersTimeoutMs),
      },
      serve,
      options.tls,
    );
    // The fast path stands in for IncomingMessage and ServerResponse, as HTTP/2's compatibility objects do.
    this.fast =
      options.tls === null && options.http2 == null
        ? installFastPath(this.server, serve as unknown as Parameters<typeof installFastPath>[1], { maxHeaderBytes: ctx.limits.maxHeaderBytes, headersTimeoutMs: options.headersTimeoutMs, keepAliveTimeoutMs: options.keepAliveTimeoutMs, requestTimeoutMs: ctx.limits.requestTimeoutMs })
        : null;
    this.h2 = options.http2 == null ? null : attachHttp2(this.server, ctx, options.http2, options.tls !== null, options.keepAliveTimeoutMs, options.headersTimeoutMs);
    this.server.on('clientError', onClientError);
    this.server.on('connect', onConnectMethod);
    this.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => handleUpgrade(ctx, req, socket, head));
    this.connections = limitConnections(this.server, ctx.limits.maxConnections);
    this.server.on('checkContinue', continueUnlessTooLarge(this.server, ctx.limits.maxBodyBytes));
  }

  async listen(): Promise<AddressInfo> {
    const server = this.server;
    this.extraListeners = await listenBatched(server, this.options, this.options.acceptBatch, (socket) => server.emit('connection', socket), this.options.acceptMode);
    const held = this.held ?? [];
    this.held = null;
    for (const [req, res] of held) handleRequest(this.ctx, req, res);
    this.h2?.release();
    return server.address() as AddressInfo;
  }

  /** Descriptors accepting on the listening port (1 + duplicates or SO_REUSEPORT sockets). */
  get acceptFds(): number {
    return 1 + this.extraListeners.length;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs` (their responses ask
   * clients to close), closes idle keep-alive connections after a short linger, then closes
   * whatever is left. Resolves with the number of requests still in flight when the grace
   * period ran out, which were cut.
   */
  async close(graceMs: number): Promise<number> {
    const ctx = this.ctx;
    const server = this.server;
    ctx.closing = true;
    this.options.tls?.close();
    const deadline = performance.now() + graceMs;
    // Stop accepting. Not http.Server#close yet: since Node 19 it also drops idle keep-alive
    // connections at once, cutting requests already on their way over them.
    const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
    for (const extra of this.extraListeners) extra.close();
    // GOAWAY on HTTP/2 connections: their open streams finish, idle ones close now.
    this.h2?.close();
    if (this.connections.open > ctx.active) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(idleLingerMs, graceMs)));
    }
    server.closeIdleConnections();
    this.fast?.closeIdle();
    if (ctx.active > 0 || ctx.tunnels.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
        ctx.onIdle = () => {
          server.closeIdleConnections();
          this.fast?.closeIdle();
          if (ctx.active === 0 && ctx.tunnels.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
      });
      ctx.onIdle = null;
    }
    const cut = ctx.active;
    // Upgraded sockets left Node's connection list (nodejs/node#53536): close tunnels here.
    for (const tunnel of [...ctx.tunnels]) tunnel.destroy();
    // HTTP/2 sessions are not in node:http's connection list either.
    this.h2?.destroy();
    server.closeAllConnections();
    this.fast?.closeAll();
    await closed;
    // The listening socket is closed already; this stops Node's connection sweep timer.
    server.close();
    return cut;
  }
}
