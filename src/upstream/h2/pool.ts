import { ClientClosedError, ClientDestroyedError } from '../client-errors.js';
import type { BackendDispatcher, BackendDispatchHandler, BackendDispatchOptions } from '../dispatcher.js';
import { H2Session, type SessionOptions, type SessionOwner } from './session.js';
import { StreamAttempt, type StreamHandler, type StreamSettings } from './stream-attempt.js';

export interface H2PoolOptions extends SessionOptions {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  /**
   * The backend's HTTP/1.1 client, made on first need: when ALPN picks http/1.1, and for
   * WebSocket upgrades (RFC 8441's extended CONNECT is not spoken).
   */
  readonly http1: () => BackendDispatcher;
}

/**
 * Switchyard's HTTP/2 client for one backend (protocol h2 or h2c): sessions opened as needed,
 * each carrying up to the backend's SETTINGS_MAX_CONCURRENT_STREAMS streams; a request goes to
 * the least-loaded session with room, or to a new one. Idle sessions close after keepAliveTimeoutMs.
 */
export class H2Pool implements BackendDispatcher, SessionOwner {
  private readonly options: H2PoolOptions;
  private readonly settings: StreamSettings;
  /** Sessions that take new streams. */
  private open: H2Session[] = [];
  /** Sessions still up, closing ones included. */
  private readonly all = new Set<H2Session>();
  private http1: BackendDispatcher | null = null;
  /** ALPN chose HTTP/1.1 last time: requests go to the HTTP/1.1 client while it has connections. */
  private preferHttp1 = false;
  private closed = false;
  private closing: Promise<void> | null = null;

  constructor(options: H2PoolOptions) {
    this.options = options;
    const url = new URL(options.origin);
    this.settings = {
      scheme: options.tls === null ? 'http' : 'https',
      authority: url.host,
      headersTimeoutMs: options.headersTimeoutMs,
      bodyTimeoutMs: options.bodyTimeoutMs,
      maxHeaderBytes: options.maxHeaderBytes,
    };
  }

  dispatch(options: BackendDispatchOptions, handler: BackendDispatchHandler): boolean {
    if (this.closed) {
      handler.onError?.(new ClientClosedError());
      return false;
    }
    if (options.upgrade != null || (this.preferHttp1 && this.http1Busy())) return this.httpClient().dispatch(options, handler);
    this.preferHttp1 = false;
    this.sessionWithRoom().assign(new StreamAttempt(options, handler as StreamHandler, this.settings));
    return true;
  }

  /** The least-loaded session below its stream limit, or a new one. */
  private sessionWithRoom(): H2Session {
    const open = this.open;
    let best: H2Session | null = null;
    for (let i = 0; i < open.length; i++) {
      const session = open[i] as H2Session;
      if (session.load < session.limit && (best === null || session.load < best.load)) best = session;
    }
    if (best !== null) return best;
    const session = new H2Session(this.options, this);
    this.open.push(session);
    this.all.add(session);
    return session;
  }

  private httpClient(): BackendDispatcher {
    return (this.http1 ??= this.options.http1());
  }

  /** The HTTP/1.1 client still has connections or requests: keep using it, else ALPN is asked again. */
  private http1Busy(): boolean {
    const stats = (this.http1 as BackendDispatcher).stats;
    return stats.connected + stats.pending + stats.running !== 0;
  }

  onSessionClosing(session: H2Session): void {
    const at = this.open.indexOf(session);
    if (at >= 0) this.open.splice(at, 1);
  }

  onSessionClosed(session: H2Session): void {
    this.onSessionClosing(session);
    this.all.delete(session);
  }

  onHttp1(session: H2Session, waiting: StreamAttempt[]): void {
    this.onSessionClosed(session);
    this.preferHttp1 = true;
    const http1 = this.httpClient();
    for (let i = 0; i < waiting.length; i++) {
      const attempt = waiting[i] as StreamAttempt;
      http1.dispatch(attempt.options, attempt.handler as BackendDispatchHandler);
    }
  }

  get stats(): { connected: number; pending: number; running: number } {
    let connected = 0;
    let pending = 0;
    let running = 0;
    for (const session of this.all) {
      if (session.connected) connected++;
      pending += session.waiting.length;
      running += session.load - session.waiting.length;
    }
    if (this.http1 !== null) {
      const stats = this.http1.stats;
      connected += stats.connected;
      pending += stats.pending;
      running += stats.running;
    }
    return { connected, pending, running };
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.closing !== null) return this.closing;
    const waits: Promise<void>[] = [];
    for (const session of [...this.all]) waits.push(session.close());
    if (this.http1 !== null) waits.push(this.http1.close());
    this.closing = Promise.all(waits).then(() => undefined);
    return this.closing;
  }

  destroy(err?: Error | null): Promise<void> {
    this.closed = true;
    const error = err ?? new ClientDestroyedError();
    const waits: Promise<void>[] = [];
    for (const session of [...this.all]) waits.push(session.destroy(error));
    if (this.http1 !== null) waits.push(this.http1.destroy(error));
    return Promise.all(waits).then(() => undefined);
  }
}
