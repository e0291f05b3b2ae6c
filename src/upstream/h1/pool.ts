import net from 'node:net';
import tls from 'node:tls';
import type { BackendDispatchHandler, BackendDispatcher, BackendDispatchOptions } from '../dispatcher.js';
import type { BackendTlsConnectOptions } from '../tls.js';
import { H1Connection, type ConnectionOwner } from './connection.js';
import { newHeadMemo, type HeadMemo } from './head-memo.js';
import { nextRegion, onRegionRead } from './read-region.js';
import { ClientClosedError } from '../client-errors.js';

/** net.connect's onread: `buffer` may also return nothing (keep the region), which the types leave out. */
const regionReads = { buffer: nextRegion as () => Uint8Array, callback: onRegionRead as (nread: number, region: Uint8Array) => boolean };

export interface H1PoolOptions {
  /** scheme://host[:port]; its host is the Host of requests whose fields have none. */
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  /** tls.connect options of an https backend; null for http. */
  readonly tls: BackendTlsConnectOptions | null;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** The most a backend's Keep-Alive hint may raise the idle timeout to. */
  readonly keepAliveMaxTimeoutMs: number;
  readonly maxHeaderBytes: number;
}

/**
 * Switchyard's HTTP/1.1 client of one backend: a last-in-first-out stack of idle keep-alive
 * connections (the most recently used is the warmest and the least likely to have been closed
 * by the backend), no connection limit (backend.maxInFlight limits attempts), one attempt per
 * connection at a time. TLS sessions are resumed across the backend's connections.
 */
export class H1Pool implements BackendDispatcher, ConnectionOwner {
  readonly hostHeader: string;
  readonly address: string;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly keepAliveMaxTimeoutMs: number;
  running = 0;
  readonly headMemo: HeadMemo = newHeadMemo();
  private readonly options: H1PoolOptions;
  private readonly idle: H1Connection[] = [];
  private readonly open = new Set<H1Connection>();
  private connecting = 0;
  private closing = false;
  private closed: (() => void)[] = [];
  private tlsSession: Buffer | null = null;
  private readonly onSession = (session: Buffer): void => {
    this.tlsSession = session;
  };

  constructor(options: H1PoolOptions) {
    this.options = options;
    this.hostHeader = new URL(options.origin).host;
    this.address = `${options.hostname}:${options.port}`;
    this.connectTimeoutMs = options.connectTimeoutMs;
    this.headersTimeoutMs = options.headersTimeoutMs;
    this.bodyTimeoutMs = options.bodyTimeoutMs;
    this.keepAliveTimeoutMs = options.keepAliveTimeoutMs;
    this.keepAliveMaxTimeoutMs = options.keepAliveMaxTimeoutMs;
  }

  get stats(): { connected: number; pending: number; running: number } {
    return { connected: this.open.size - this.connecting, pending: this.connecting, running: this.running };
  }

  dispatch(options: BackendDispatchOptions, handler: BackendDispatchHandler): boolean {
    if (this.closing) {
      handler.onError(new ClientClosedError());
      return false;
    }
    // An upgrade takes a socket that reads through its Readable, which a tunnel can take over.
    if (options.upgrade != null) {
      this.connect(options, handler, false);
      return true;
    }
    const idle = this.idle;
    while (idle.length !== 0) {
      const conn = idle.pop() as H1Connection;
      conn.idle = false;
      if (conn.socket.destroyed) continue;
      conn.run(options, handler);
      return true;
    }
    this.connect(options, handler, true);
    return true;
  }

  /** `regions`: a plain socket reads into read regions (read-region.ts), not through its Readable. */
  private connect(options: BackendDispatchOptions, handler: BackendDispatchHandler, regions: boolean): void {
    const { hostname, port } = this.options;
    const tlsOptions = this.options.tls;
    let socket: net.Socket;
    if (tlsOptions === null) {
      // 64 KiB stream buffers as undici's connector (a Socket option the connect types leave out).
      const connectOptions: net.NetConnectOpts & { highWaterMark: number } = { host: hostname, port, highWaterMark: 64 * 1024 };
      if (regions) connectOptions.onread = regionReads;
      socket = net.connect(connectOptions);
    } else {
      socket = tls.connect({ ...tlsOptions, ALPNProtocols: [...tlsOptions.ALPNProtocols], host: hostname, port, ...(this.tlsSession === null ? {} : { session: this.tlsSession }) });
      socket.on('session', this.onSession);
    }
    const conn = new H1Connection(this, socket, tlsOptions !== null, this.options.maxHeaderBytes, options, handler);
    this.open.add(conn);
    this.connecting++;
  }

  connected(conn: H1Connection): void {
    this.connecting--;
    const options = conn.waitingOptions as BackendDispatchOptions;
    const handler = conn.waitingHandler as BackendDispatchHandler;
    conn.waitingOptions = null;
    conn.waitingHandler = null;
    conn.run(options, handler);
  }

  released(conn: H1Connection): void {
    if (this.closing) {
      conn.socket.destroy();
      return;
    }
    this.idle.push(conn);
    conn.rest();
  }

  removed(conn: H1Connection): void {
    if (!this.open.delete(conn)) return;
    if (!conn.isConnected) this.connecting--;
    if (conn.idle) {
      conn.idle = false;
      const at = this.idle.lastIndexOf(conn);
      if (at !== -1) this.idle.splice(at, 1);
    }
    if (this.closing && this.open.size === 0) this.settle();
  }

  /** Lets the attempts in flight finish, then closes every connection (idle ones at once). */
  close(): Promise<void> {
    this.closing = true;
    for (const conn of this.idle) conn.socket.destroy();
    return this.whenClosed();
  }

  /** Closes every connection now; the attempts in flight and those waiting for a connect fail with `err`. */
  destroy(err?: Error | null): Promise<void> {
    this.closing = true;
    const reason = err ?? new ClientClosedError();
    for (const conn of [...this.open]) conn.destroy(reason);
    return this.whenClosed();
  }

  private whenClosed(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.closed.push(resolve));
  }

  private settle(): void {
    const waiters = this.closed;
    this.closed = [];
    for (const resolve of waiters) resolve();
  }
}
