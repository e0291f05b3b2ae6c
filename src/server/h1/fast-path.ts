import type http from 'node:http';
import type net from 'node:net';
import { FastConnection, type FastPathSettings } from './fast-connection.js';
import type { FastBodyRequest, FastRequest } from './fast-request.js';
import type { FastResponse } from './fast-response.js';
import { IdleSweep } from './idle-sweep.js';

/**
 * The listener's own HTTP/1.1 path for cleartext listeners: node:http's server keeps the
 * listening socket, its options and every connection this path does not serve (fast-connection.ts
 * says which), but new connections are read here first. node:http's parser, IncomingMessage and
 * ServerResponse cost about a third of the CPU of a small proxied GET; this path does the same
 * work for the requests that make up most traffic: plain heads, no body.
 */
export interface FastPath {
  /** Connections on this path now. */
  readonly open: ReadonlySet<FastConnection>;
  /** Closes the connections with no request in flight (node:http's closeIdleConnections). */
  closeIdle(): void;
  /** Closes every connection on this path (node:http's closeAllConnections). */
  closeAll(): void;
}

export interface FastPathOptions {
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** 0 serves requests with a Content-Length body here too; a total request timeout leaves them to node:http, which keeps it. */
  readonly requestTimeoutMs: number;
}

type ConnectionListener = (this: http.Server, socket: net.Socket) => void;

/**
 * Puts the path in front of `server`'s own 'connection' listener, which still serves every
 * connection the path hands on. Returns null, leaving the server as it was, when the server has
 * no such listener to hand on to.
 */
export function installFastPath(server: http.Server, serve: (req: FastRequest | FastBodyRequest, res: FastResponse) => void, options: FastPathOptions): FastPath | null {
  const listeners = server.listeners('connection') as ConnectionListener[];
  const [http1] = listeners;
  if (listeners.length !== 1 || typeof http1 !== 'function') return null;
  server.removeListener('connection', http1);
  const open = new Set<FastConnection>();
  const settings: FastPathSettings = {
    serve,
    fallback: (socket) => http1.call(server, socket),
    maxHeaderBytes: options.maxHeaderBytes,
    headersTimeoutMs: options.headersTimeoutMs,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    bodies: options.requestTimeoutMs === 0,
    open,
    sweep: new IdleSweep(open, options.headersTimeoutMs, options.keepAliveTimeoutMs),
  };
  server.on('connection', (socket: net.Socket) => {
    if (!socket.destroyed) new FastConnection(socket, settings);
  });
  return {
    open,
    closeIdle() {
      for (const connection of [...open]) connection.close(false);
    },
    closeAll() {
      for (const connection of [...open]) connection.close(true);
    },
  };
}
