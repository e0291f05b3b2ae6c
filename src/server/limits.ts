import type http from 'node:http';
import type net from 'node:net';
import { ConfigError } from '../errors.js';

/**
 * What a listener accepts from clients (issue 5, "Downstream limits"), and the proxies whose
 * forwarding fields it believes. These are start() options; the listener and the proxy handler
 * read the checked, defaulted `DownstreamLimits`.
 */
export interface DownstreamOptions {
  /**
   * Request line plus header fields larger than this get 431 and the connection is closed
   * (RFC 6585 section 5). Default 16 KiB, Node's own default.
   */
  readonly maxHeaderBytes?: number;
  /**
   * Time the whole request, body included, has to arrive; 408 and close when it runs out.
   * Default 0: off, so long uploads pass (idle and header timeouts still guard stalls).
   */
  readonly requestTimeoutMs?: number;
  /** Client connections open at once; further ones are closed as soon as they are accepted. Default 10000. */
  readonly maxConnections?: number;
  /**
   * Request bodies larger than this get 413 (RFC 9110 section 15.5.14) and the connection is
   * closed. Default 0: no limit, as a proxy of large uploads needs.
   */
  readonly maxBodyBytes?: number;
  /**
   * Peers (IPs and CIDR ranges, IPv4 and IPv6) whose X-Forwarded-* and Forwarded fields are
   * kept; from anyone else they are replaced by ours. Default: none.
   */
  readonly trustedProxies?: readonly string[];
  /**
   * Paths with an encoded `/` or `\` (%2F, %5C), a literal `\`, or an encoded dot segment
   * (`%2e%2e`): `reject` (default) answers 400, `keep` forwards them as sent (issue 9).
   */
  readonly ambiguousPaths?: 'reject' | 'keep';
}

export interface DownstreamLimits {
  readonly maxHeaderBytes: number;
  /** 0: off. */
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
  /** 0: no limit. */
  readonly maxBodyBytes: number;
  readonly ambiguousPaths: 'reject' | 'keep';
}

export const defaultDownstreamLimits: DownstreamLimits = {
  maxHeaderBytes: 16 * 1024,
  requestTimeoutMs: 0,
  maxConnections: 10_000,
  maxBodyBytes: 0,
  ambiguousPaths: 'reject',
};

function whole(value: number | undefined, fallback: number, min: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`${what} must be a whole number of at least ${min}`);
  return value;
}

function ambiguousPaths(value: string | undefined): 'reject' | 'keep' {
  if (value === undefined || value === 'reject' || value === 'keep') return value ?? 'reject';
  throw new ConfigError(`ambiguousPaths must be "reject" or "keep", not ${JSON.stringify(value)}`);
}

/** Checks and defaults the limits among start() options; a ConfigError names the bad one. */
export function downstreamLimits(options: DownstreamOptions): DownstreamLimits {
  const d = defaultDownstreamLimits;
  return {
    maxHeaderBytes: whole(options.maxHeaderBytes, d.maxHeaderBytes, 1024, 'maxHeaderBytes'),
    requestTimeoutMs: whole(options.requestTimeoutMs, d.requestTimeoutMs, 0, 'requestTimeoutMs'),
    maxConnections: whole(options.maxConnections, d.maxConnections, 1, 'maxConnections'),
    maxBodyBytes: whole(options.maxBodyBytes, d.maxBodyBytes, 0, 'maxBodyBytes'),
    ambiguousPaths: ambiguousPaths(options.ambiguousPaths),
  };
}

/** Longest pause between Node's checks of header and request timeouts. */
const checkIntervalMs = 1000;

/**
 * node:http server options for the limits. Node refuses a headersTimeout above a non-zero
 * requestTimeout, and checks both only every connectionsCheckingInterval, so a short
 * requestTimeout gets a matching interval.
 */
export function serverLimitOptions(limits: DownstreamLimits, headersTimeoutMs: number): http.ServerOptions {
  const requestTimeout = limits.requestTimeoutMs;
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout,
    headersTimeout: requestTimeout > 0 ? Math.min(headersTimeoutMs, requestTimeout) : headersTimeoutMs,
    // Node enforces both timeouts only when it sweeps its connections (every 30 s by default):
    // sweep often enough that a slow head or body is cut near its deadline.
    connectionsCheckingInterval: Math.max(10, Math.ceil(Math.min(checkIntervalMs, headersTimeoutMs / 4, requestTimeout > 0 ? requestTimeout / 4 : checkIntervalMs))),
  };
}

const kLimit = Symbol('switchyard.connectionLimit');
interface CountedSocket extends net.Socket {
  [kLimit]?: ConnectionCount;
}
/** Client connections a listener has open now. */
export interface ConnectionCount {
  open: number;
}

function onCountedClose(this: CountedSocket): void {
  const count = this[kLimit];
  if (count !== undefined) count.open--;
}

/**
 * Closes a connection at once, before it is read, when `max` are already open. Counted here
 * rather than with server.maxConnections, which misses connections the extra accept
 * descriptors (accept-fds.ts) hand over through the 'connection' event.
 * Returns the live count (the listener's graceful close reads it).
 */
export function limitConnections(server: http.Server, max: number): ConnectionCount {
  const count: ConnectionCount = { open: 0 };
  server.prependListener('connection', (socket: CountedSocket) => {
    if (count.open >= max) {
      socket.destroy();
      return;
    }
    count.open++;
    socket[kLimit] = count;
    // 'close' is emitted once: `on` spares the wrapper and state `once` allocates per connection.
    socket.on('close', onCountedClose);
  });
  return count;
}

/**
 * 'checkContinue' listener: a request announcing a body over maxBodySize (Expect: 100-continue)
 * gets its 413 without the interim 100 that would invite the body (RFC 9110 section 10.1.1);
 * any other gets the 100 Node would send, then goes on as a normal request.
 */
export function continueUnlessTooLarge(server: http.Server, maxBodyBytes: number): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    if (maxBodyBytes === 0 || !(Number(req.headers['content-length']) > maxBodyBytes)) res.writeContinue();
    server.emit('request', req, res);
  };
}
