import type { Socket } from 'node:net';
import type { BackendDispatchHandler, BackendDispatchOptions } from '../dispatcher.js';
import { BodyTimeoutError, ConnectTimeoutError, HeadersTimeoutError, RequestAbortedError, SocketClosedError, UnsentRequestError } from '../client-errors.js';
import type { HeadMemo } from './head-memo.js';
import { ResponseParser } from './response-parser.js';

/** What a connection needs of its pool. */
export interface ConnectionOwner {
  readonly hostHeader: string;
  readonly address: string;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly keepAliveMaxTimeoutMs: number;
  /** The last final head's fields of any of its connections, which the next head's parse reuses. */
  readonly headMemo: HeadMemo;
  /** Attempts on the wire. */
  running: number;
  /** The connect finished: run the attempt that waited for it. */
  connected(conn: ConnectionBase): void;
  /** The connection may carry another attempt. */
  released(conn: ConnectionBase): void;
  /** The socket closed, or left the pool with an upgrade. */
  removed(conn: ConnectionBase): void;
}

export const timerNone = 0;
export const timerConnect = 1;
export const timerHeaders = 2;
export const timerBody = 3;
export const timerIdle = 4;

function onTimer(conn: ConnectionBase): void {
  conn.onTimer();
}

/** The connection of a socket, for the socket listeners every connection shares (no closures per connection). */
export const kConnection = Symbol('switchyard.backendConnection');
export interface TaggedSocket extends Socket {
  /** null once the socket left with an upgrade. */
  [kConnection]: ConnectionBase | null;
}

// `this` is the socket.
function onSocketConnect(this: TaggedSocket): void {
  (this[kConnection] as ConnectionBase).onSocketConnect();
}
function onSocketError(this: TaggedSocket, err: Error): void {
  (this[kConnection] as ConnectionBase).onSocketError(err);
}
function onSocketClose(this: TaggedSocket): void {
  (this[kConnection] as ConnectionBase).onSocketClose();
}
function onSocketDrain(this: TaggedSocket): void {
  (this[kConnection] as ConnectionBase).onSocketDrain();
}
/** The exchange's listeners, which H1Connection adds (and removes at an upgrade). */
export function onSocketData(this: TaggedSocket, chunk: Buffer): void {
  (this[kConnection] as ConnectionBase).onSocketData(chunk);
}
export function onSocketEnd(this: TaggedSocket): void {
  (this[kConnection] as ConnectionBase).onSocketEnd();
}

/**
 * The life of one backend connection: connect, the socket's events, the attempt's end (abort,
 * failure) and the one timer per connection, re-armed for connect, response head, body gaps
 * and idleness. H1Connection (connection.ts) adds the exchange of a request and its response.
 */
export abstract class ConnectionBase {
  readonly socket: Socket;
  readonly parser: ResponseParser;
  handler: BackendDispatchHandler | null = null;
  bodyIterator: AsyncIterator<Buffer> | null = null;
  /** The attempt waiting for the connect (null once it runs). */
  waitingOptions: BackendDispatchOptions | null;
  waitingHandler: BackendDispatchHandler | null;
  isConnected = false;
  /** In its pool's idle stack. */
  idle = false;
  /** The handler's abort, made once per connection (bound: an arrow would also keep a context per connection). */
  readonly abort: (err?: Error) => void;

  protected readonly owner: ConnectionOwner;
  protected timerKind = timerNone;
  /** The attempt's headers timeout, which also bounds a wait for the backend to read the request body. */
  protected headersTimeoutMs = 0;
  /** Some of the request went out: an abort must close the connection. */
  written = false;
  /** The response is paused by its handler; the socket ended meanwhile. */
  protected paused = false;
  protected ended = false;
  /** Bytes read but not parsed while paused, in order. */
  protected readonly held: Buffer[] = [];
  private timer: NodeJS.Timeout | null = null;
  /** The duration the timer was made with, and when it fires (performance.now(); 0: not scheduled). */
  private timerMs = 0;
  private timerDueMs = 0;
  /** The armed kind's duration and deadline. */
  private armedMs = 0;
  private deadlineMs = 0;
  private socketError: Error | null = null;
  private drainWaiter: (() => void) | null = null;
  /** The bytes being parsed are lent (the shared read region): what outlives the read is copied. */
  private lent = false;

  constructor(owner: ConnectionOwner, socket: Socket, secure: boolean, maxHeaderBytes: number, options: BackendDispatchOptions, handler: BackendDispatchHandler) {
    this.owner = owner;
    this.socket = socket;
    this.parser = new ResponseParser(maxHeaderBytes, owner.headMemo);
    this.waitingOptions = options;
    this.waitingHandler = handler;
    this.abort = this.abortRequest.bind(this);
    (socket as TaggedSocket)[kConnection] = this;
    socket.once(secure ? 'secureConnect' : 'connect', onSocketConnect);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
    this.arm(timerConnect, owner.connectTimeoutMs);
  }

  abstract onSocketData(chunk: Buffer): void;
  abstract onSocketEnd(): void;

  /** A read into a region (read-region.ts). */
  onRegionData(chunk: Buffer, lent: boolean): void {
    this.lent = lent;
    this.onSocketData(chunk);
    this.lent = false;
  }

  /** `bytes` to keep past the read: a copy when they are lent. */
  protected kept(bytes: Buffer): Buffer {
    return this.lent ? Buffer.from(bytes) : bytes;
  }

  drained(): Promise<void> {
    // The backend is not reading the body and no head timer runs yet: the wait is bounded by the
    // headers timeout (as undici's), restarted by each 'drain', so a slow client is never blamed.
    if (this.timerKind === timerNone) this.arm(timerHeaders, this.headersTimeoutMs);
    return new Promise((resolve) => {
      this.drainWaiter = resolve;
    });
  }

  /** The socket's listeners of this class, for a socket that leaves with an upgrade. */
  protected detach(): void {
    this.timerKind = timerNone;
    if (this.timer !== null) clearTimeout(this.timer);
    this.socket.off('error', onSocketError);
    this.socket.off('close', onSocketClose);
    this.socket.off('drain', onSocketDrain);
    (this.socket as TaggedSocket)[kConnection] = null;
  }

  onSocketConnect(): void {
    this.isConnected = true;
    this.timerKind = timerNone;
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 60_000);
    this.owner.connected(this);
  }

  onSocketError(err: Error): void {
    this.socketError ??= err;
  }

  onSocketClose(): void {
    this.timerKind = timerNone;
    this.timerDueMs = 0;
    if (this.timer !== null) clearTimeout(this.timer);
    this.wakeDrain();
    this.owner.removed(this);
    if (this.waitingHandler !== null) {
      const handler = this.waitingHandler;
      this.waitingHandler = null;
      this.waitingOptions = null;
      handler.onError(this.socketError ?? new SocketClosedError('the connection closed before it was established'));
      return;
    }
    if (this.handler !== null && !(this.paused && this.ended && this.socketError === null)) this.lost(this.socketError ?? new SocketClosedError('the backend closed the connection'));
  }

  onSocketDrain(): void {
    if (this.drainWaiter !== null && this.timerKind === timerHeaders) this.timerKind = timerNone;
    this.wakeDrain();
  }

  protected wakeDrain(): void {
    const waiter = this.drainWaiter;
    if (waiter === null) return;
    this.drainWaiter = null;
    waiter();
  }

  // ---- ending attempts -------------------------------------------------------------------

  /** The handler's abort: the client went away (no error) or our code gave up on the attempt. */
  abortRequest(err?: Error): void {
    const handler = this.handler;
    if (handler === null) return;
    this.endAttempt();
    // Nothing went out yet (aborted within onConnect): the connection is as good as before.
    if (!this.written) this.owner.released(this);
    else this.socket.destroy();
    handler.onError(err ?? new RequestAbortedError());
  }

  /** The attempt fails with `err` and the connection closes. */
  protected fail(err: Error): void {
    const handler = this.handler as BackendDispatchHandler;
    this.endAttempt();
    this.socket.destroy();
    handler.onError(err);
  }

  /** The connection is lost or unusable: the attempt fails, as unsent when nothing of it went out. */
  protected lost(err: Error): void {
    this.fail(this.written ? err : new UnsentRequestError(err));
  }

  protected endAttempt(): void {
    this.handler = null;
    this.owner.running--;
    this.parser.stop();
    this.timerKind = timerNone;
    this.paused = false;
    this.held.length = 0;
    const iterator = this.bodyIterator;
    this.bodyIterator = null;
    if (iterator !== null && iterator.return !== undefined) iterator.return().catch(() => {});
    this.wakeDrain();
  }

  /** Closes the connection now; its attempt, or the one waiting for it, fails with `err`. */
  destroy(err: Error): void {
    this.socketError ??= err;
    if (this.handler !== null) this.fail(err);
    else this.socket.destroy();
  }

  // ---- the timer -------------------------------------------------------------------------

  /** Restarts the armed timer (a body chunk arrived). */
  protected refreshTimer(): void {
    this.deadlineMs = performance.now() + this.armedMs;
  }

  /**
   * Sets the one deadline of the connection (0 ms: none). The timer runs lazily: a deadline
   * later than the scheduled firing only moves the deadline, and the firing schedules the rest;
   * so a busy connection re-arming three times a request allocates a timer only now and then.
   */
  protected arm(kind: number, ms: number): void {
    if (ms <= 0) {
      this.timerKind = timerNone;
      return;
    }
    this.timerKind = kind;
    this.armedMs = ms;
    const deadlineMs = performance.now() + ms;
    this.deadlineMs = deadlineMs;
    if (this.timerDueMs !== 0 && this.timerDueMs <= deadlineMs) return;
    this.schedule(ms);
  }

  private schedule(ms: number): void {
    if (this.timer !== null && this.timerMs === ms) this.timer.refresh();
    else {
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(onTimer, ms, this);
      this.timer.unref();
      this.timerMs = ms;
    }
    this.timerDueMs = performance.now() + ms;
  }

  onTimer(): void {
    this.timerDueMs = 0;
    const kind = this.timerKind;
    if (kind === timerNone) return;
    const leftMs = this.deadlineMs - performance.now();
    if (leftMs >= 1) return this.schedule(Math.ceil(leftMs));
    this.timerKind = timerNone;
    const ms = this.armedMs;
    if (kind === timerConnect) this.destroy(new ConnectTimeoutError(this.owner.address, ms));
    else if (kind === timerHeaders && this.handler !== null) this.fail(new HeadersTimeoutError(ms));
    else if (kind === timerBody && this.handler !== null) this.fail(new BodyTimeoutError(ms));
    else if (kind === timerIdle) this.socket.destroy();
  }
}
