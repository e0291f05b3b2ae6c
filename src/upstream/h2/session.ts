import http2, { type ClientHttp2Session, type Settings } from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { ConnectTimeoutError, SocketClosedError } from '../client-errors.js';
import { h2StreamsPerConnection } from '../protocol.js';
import type { BackendTlsConnectOptions } from '../tls.js';
import { UnprocessedStreamError } from './errors.js';
import type { StreamAttempt, StreamOwner } from './stream-attempt.js';

/** How the sessions of one backend are opened and kept. */
export interface SessionOptions {
  /** `http://host:port` or `https://host:port`. */
  readonly origin: string;
  readonly hostname: string;
  readonly port: number;
  /** tls.connect options (server name pinned, ALPN offering h2 and http/1.1); null for h2c. */
  readonly tls: BackendTlsConnectOptions | null;
  readonly connectTimeoutMs: number;
  /** An idle session (no stream) closes after this long. */
  readonly keepAliveTimeoutMs: number;
  /** Advertised as SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2), a hint to the backend. */
  readonly maxHeaderBytes: number;
}

/** What a session tells the pool that owns it. */
export interface SessionOwner {
  /** The session takes no new streams (GOAWAY, idle, closing): the pool stops picking it. */
  onSessionClosing(session: H2Session): void;
  /** The session is gone; `waiting` never reached it. */
  onSessionClosed(session: H2Session): void;
  /** ALPN chose HTTP/1.1: `waiting` goes to the backend's HTTP/1.1 client instead. */
  onHttp1(session: H2Session, waiting: StreamAttempt[]): void;
}

/**
 * One HTTP/2 connection to a backend. Attempts assigned before it is connected wait, then start
 * in order; its streams are bounded by the backend's SETTINGS_MAX_CONCURRENT_STREAMS (undici's
 * default until the backend says). Its 'error' or 'close' fails only its own streams.
 */
export class H2Session implements StreamOwner {
  session: ClientHttp2Session | null = null;
  connected = false;
  /** Takes no new streams. */
  closing = false;
  /** Streams the backend allows at once. */
  limit = h2StreamsPerConnection;
  /** Attempts assigned: waiting plus open. */
  load = 0;
  waiting: StreamAttempt[] = [];
  goawayLastId = -1;
  private readonly owner: SessionOwner;
  private readonly options: SessionOptions;
  private socket: net.Socket | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private idleTimer: NodeJS.Timeout | null = null;
  private error: Error | null = null;
  private closeWhenConnected = false;
  private gone = false;
  private readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(options: SessionOptions, owner: SessionOwner) {
    this.options = options;
    this.owner = owner;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (options.connectTimeoutMs > 0) this.connectTimer = setTimeout(onConnectTimeout, options.connectTimeoutMs, this);
    if (options.tls === null) {
      const socket = net.connect({ host: options.hostname, port: options.port });
      this.socket = socket;
      this.attach(socket);
    } else {
      const socket = tls.connect({ ...options.tls, ALPNProtocols: [...options.tls.ALPNProtocols], host: options.hostname, port: options.port });
      this.socket = socket;
      socket.once('secureConnect', () => this.negotiated(socket));
      socket.once('error', (err) => this.closeNow(err));
    }
  }

  /** Runs `attempt` on this session, at once or once connected. */
  assign(attempt: StreamAttempt): void {
    this.load++;
    if (this.connected) attempt.start(this);
    else this.waiting.push(attempt);
  }

  streamEnded(): void {
    this.load--;
    if (this.load !== 0) return;
    // Node keeps a session that received GOAWAY open after its last stream: close it here.
    if (this.closing) this.closeNow(null);
    else this.armIdle();
  }

  private armIdle(): void {
    if (this.closing) return;
    // One timer per session, re-armed whenever the session falls idle; it fires into a check.
    if (this.idleTimer === null) this.idleTimer = setTimeout(onIdle, this.options.keepAliveTimeoutMs, this).unref();
    else this.idleTimer.refresh();
  }

  onIdleTimer(): void {
    if (this.load === 0 && !this.closing) void this.close();
  }

  /** Lets the open streams (and those waiting for the connection) finish, then closes. */
  close(): Promise<void> {
    this.markClosing();
    if (this.load === 0) this.closeNow(null);
    else if (this.connected) (this.session as ClientHttp2Session).close();
    else this.closeWhenConnected = true;
    return this.closed;
  }

  /** Closes now: every stream fails with `err`. */
  destroy(err: Error): Promise<void> {
    this.closeNow(err);
    return this.closed;
  }

  /** The TLS handshake is done: HTTP/2 if the backend chose it by ALPN, else HTTP/1.1. */
  private negotiated(socket: tls.TLSSocket): void {
    if (this.gone) return;
    if (socket.alpnProtocol === 'h2') {
      this.attach(socket);
      return;
    }
    const waiting = this.waiting;
    this.waiting = [];
    this.load = 0;
    this.markClosing();
    this.finish();
    socket.destroy();
    this.owner.onHttp1(this, waiting);
  }

  private attach(socket: net.Socket): void {
    // As many fields as an HTTP/1.1 head of maxHeaderBytes holds (4 bytes at least each; Node's
    // default is 128), so maxResponseHeaderSize decides for both protocols. HPACK counts 32 bytes
    // per field where an HTTP/1.1 head counts 4 (RFC 9113 §6.5.2).
    const maxHeaderListPairs = Math.ceil(this.options.maxHeaderBytes / 4) + 4;
    const settings: Settings = { enablePush: false, maxHeaderListSize: this.options.maxHeaderBytes + 28 * maxHeaderListPairs };
    const session = http2.connect(this.options.origin, { settings, maxHeaderListPairs, peerMaxConcurrentStreams: h2StreamsPerConnection, createConnection: () => socket });
    this.session = session;
    session.on('connect', () => this.onConnect());
    session.on('remoteSettings', (remote: Settings) => {
      this.limit = Math.max(1, remote.maxConcurrentStreams ?? h2StreamsPerConnection);
    });
    // RFC 9113 §6.8: no new streams; those up to lastStreamId finish, the others were not processed.
    session.on('goaway', (_code: number, lastStreamId: number) => {
      this.goawayLastId = lastStreamId;
      this.markClosing();
      if (this.load === 0) this.closeNow(null);
    });
    session.on('error', (err: Error) => {
      this.error ??= err;
    });
    session.on('close', () => this.closeNow(this.error));
  }

  private onConnect(): void {
    if (this.gone) return;
    this.connected = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    (this.socket as net.Socket).setNoDelay(true);
    const waiting = this.waiting;
    this.waiting = [];
    for (let i = 0; i < waiting.length; i++) (waiting[i] as StreamAttempt).start(this);
    if (this.load === 0) {
      if (this.closeWhenConnected) this.closeNow(null);
      else this.armIdle();
    } else if (this.closeWhenConnected) (this.session as ClientHttp2Session).close();
  }

  onConnectTimeout(): void {
    this.connectTimer = null;
    if (!this.connected) this.closeNow(new ConnectTimeoutError(this.options.origin, this.options.connectTimeoutMs));
  }

  private markClosing(): void {
    if (this.closing) return;
    this.closing = true;
    this.owner.onSessionClosing(this);
  }

  /** The session is over: attempts still waiting fail (never connected: a connect failure; else not processed). */
  private closeNow(err: Error | null): void {
    if (this.gone) return;
    this.markClosing();
    this.finish();
    if (this.session !== null && !this.session.destroyed) this.session.destroy(err ?? undefined);
    else if (this.socket !== null) this.socket.destroy();
    const waiting = this.waiting;
    this.waiting = [];
    const failure = this.connected
      ? new UnprocessedStreamError('the connection closed before the stream was sent', { cause: err })
      : (err ?? new SocketClosedError('the connection closed before it was established'));
    for (let i = 0; i < waiting.length; i++) (waiting[i] as StreamAttempt).failUnsent(failure);
    this.owner.onSessionClosed(this);
  }

  private finish(): void {
    this.gone = true;
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.connectTimer = null;
    this.idleTimer = null;
    this.resolveClosed();
  }
}

function onConnectTimeout(session: H2Session): void {
  session.onConnectTimeout();
}

function onIdle(session: H2Session): void {
  session.onIdleTimer();
}
