import type net from 'node:net';
import { abortedError, FastBodyRequest, FastRequest, type BodySource } from './fast-request.js';
import { FastResponse, type ResponseOwner } from './fast-response.js';
import type { IdleSweep, SweptConnection } from './idle-sweep.js';
import { parseRequestHead } from './request-head.js';

/** What every connection of one listener shares (fast-path.ts makes it). */
export interface FastPathSettings {
  /** Serves one request; the proxy's handler. */
  readonly serve: (req: FastRequest | FastBodyRequest, res: FastResponse) => void;
  /** Gives the socket to node:http, which reads it from then on (the bytes read are put back first). */
  readonly fallback: (socket: net.Socket) => void;
  readonly maxHeaderBytes: number;
  readonly headersTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Requests with a body are served here too; false (a total request timeout is set) leaves them to node:http. */
  readonly bodies: boolean;
  /** The connections on this path now; the listener's close reads it. */
  readonly open: Set<FastConnection>;
  /** The header and keep-alive timeouts of `open`. */
  readonly sweep: IdleSweep;
}

/** The end of a request head: the empty line (RFC 9112 section 2.1). */
const headEnd = Buffer.from('\r\n\r\n', 'latin1');

/** The answer to a connection that sent no request within the header timeout, as node:http's. */
const requestTimeout = 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

function ignore(): void {}

const kConnection = Symbol('switchyard.fastConnection');
interface TaggedSocket extends net.Socket {
  [kConnection]: FastConnection;
}

// Socket listeners shared by every connection (no closures per connection): `this` is the socket.
function onSocketData(this: TaggedSocket, chunk: Buffer): void {
  this[kConnection].onData(chunk);
}
function onSocketEnd(this: TaggedSocket): void {
  this[kConnection].onEnd();
}
function onSocketClose(this: TaggedSocket): void {
  this[kConnection].onClose();
}
/** What the path listens to on its sockets, added on arrival and removed at the hand-off. */
const socketListeners: readonly (readonly [string, (...args: any[]) => void])[] = [
  ['data', onSocketData],
  ['end', onSocketEnd],
  ['error', ignore],
  ['close', onSocketClose],
  ['drain', onSocketDrain],
];

function onSocketFinish(this: net.Socket): void {
  this.destroy();
}
function onSocketDrain(this: TaggedSocket): void {
  this[kConnection].onDrain();
}

/**
 * One client connection on the listener's own HTTP/1.1 path. Requests whose head arrives whole
 * and plain (request-head.ts) are served here, one at a time; pipelined ones wait their turn.
 * At the first byte of anything else (a body, an upgrade, a partial or malformed head) the
 * connection goes to node:http for the rest of its life, with the unread bytes, so node:http's
 * limits, timeouts and error answers apply exactly as before.
 */
export class FastConnection implements ResponseOwner, BodySource, SweptConnection {
  readonly socket: net.Socket;
  readonly keepAliveSeconds: number;
  private readonly settings: FastPathSettings;
  /** The response in flight, or null when the connection is idle. */
  private current: FastResponse | null = null;
  /** Bytes after the head of the request in flight: the next (pipelined) requests. */
  private pending: Buffer | null = null;
  private served = 0;
  /** Reading stopped: pipelined bytes piled up while a response is under way. */
  private pipelinePaused = false;
  /** Reading stopped: the request body's reader is full (backpressure). */
  private bodyPaused = false;
  /** The body being received, and the bytes of it still to come (after its response, they are read and dropped). */
  private body: FastBodyRequest | null = null;
  private bodyLeft = 0;
  /** The last answer is out: the connection is closing. */
  private closing = false;
  /** The sweep's tick at the last read or the end of the last response: the idle timeouts count from it. */
  private activeTick: number;
  /** The write callback of a response's last bytes (bound: an arrow would also keep a context per connection). */
  readonly onFinalWrite: (err?: Error | null) => void;

  constructor(socket: net.Socket, settings: FastPathSettings) {
    this.socket = socket;
    this.settings = settings;
    this.keepAliveSeconds = settings.keepAliveTimeoutMs > 0 ? Math.floor(settings.keepAliveTimeoutMs / 1000) : -1;
    this.onFinalWrite = this.finalWrite.bind(this);
    settings.open.add(this);
    (socket as TaggedSocket)[kConnection] = this;
    for (const [event, listener] of socketListeners) socket.on(event, listener);
    // Until the first request: its head must come within the header timeout (then 408).
    this.activeTick = settings.sweep.tick;
    settings.sweep.start();
  }

  /** No request in flight: the listener's close may end the connection now. */
  get idle(): boolean {
    return this.current === null && this.bodyLeft === 0;
  }

  onData(chunk: Buffer): void {
    this.activeTick = this.settings.sweep.tick;
    // After a last answer nothing more is served (RFC 9112 section 9.6), even what arrives before the FIN is out.
    if (this.closing) return;
    if (this.bodyLeft > 0) return this.feedBody(chunk);
    if (this.current !== null) return this.queue(chunk);
    const data = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    this.consume(data);
  }

  /** Bytes of the next requests, while a response is under way. */
  private queue(chunk: Buffer): void {
    this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.throttle();
  }

  /**
   * A client that keeps sending while it waits: reading stops while the requests already read
   * hold more than one head's worth of bytes, and starts again only below it, so a client that
   * pipelines without reading its answers costs at most that plus one read.
   */
  private throttle(): void {
    const full = this.pending !== null && this.pending.length > this.settings.maxHeaderBytes;
    if (full === this.pipelinePaused) return;
    this.pipelinePaused = full;
    if (full) this.socket.pause();
    else if (!this.bodyPaused) this.socket.resume();
  }

  /** Serves the request at the start of `data`, or hands the connection to node:http. */
  private consume(data: Buffer): void {
    const end = data.indexOf(headEnd);
    if (end === -1 || end + 4 > this.settings.maxHeaderBytes) return this.handOff(data);
    const head = parseRequestHead(data.toString('latin1', 0, end + 2));
    if (head === null || (head.bodyLength > 0 && !this.settings.bodies)) return this.handOff(data);
    const rest = end + 4 < data.length ? data.subarray(end + 4) : null;
    const res = new FastResponse(this, head.method, head.keepAlive, head.minor === 1);
    this.current = res;
    this.served++;
    let req: FastRequest | FastBodyRequest;
    if (head.bodyLength === 0) {
      this.pending = rest;
      if (rest !== null) this.throttle();
      req = new FastRequest(head, this.socket);
    } else {
      this.pending = null;
      req = this.body = new FastBodyRequest(head, this.socket, this);
      this.bodyLeft = head.bodyLength;
    }
    try {
      this.settings.serve(req, res);
    } catch {
      // The handler catches its own errors; this is the last guard for the connection.
      this.socket.destroy();
      return;
    }
    if (this.bodyLeft > 0 && rest !== null) this.feedBody(rest);
  }

  /** Body bytes (and whatever follows them) from the client. */
  private feedBody(chunk: Buffer): void {
    const take = Math.min(chunk.length, this.bodyLeft);
    this.bodyLeft -= take;
    const body = this.body as FastBodyRequest;
    const more = body.push(take === chunk.length ? chunk : chunk.subarray(0, take));
    if (this.bodyLeft === 0) {
      body.complete = true;
      body.push(null);
      this.body = null;
      if (take < chunk.length) this.queue(chunk.subarray(take));
      // The response was over first: the connection goes on with what the client sent next.
      if (this.current === null) this.next();
    } else if (!more && !this.bodyPaused) {
      this.bodyPaused = true;
      this.socket.pause();
    }
  }

  /** The body's reader wants more. */
  readBody(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    if (!this.pipelinePaused) this.socket.resume();
  }

  private handOff(data: Buffer): void {
    const socket = this.socket;
    this.detach();
    socket.pause();
    socket.unshift(data);
    this.settings.fallback(socket);
    socket.resume();
  }

  private detach(): void {
    const socket = this.socket;
    this.settings.open.delete(this);
    for (const [event, listener] of socketListeners) socket.removeListener(event, listener);
  }

  /** The response in flight handed its last bytes to the socket: the next request may start. */
  private finalWrite(err?: Error | null): void {
    const res = this.current;
    if (res === null) return;
    this.current = null;
    // From now on an idle connection closes after the keep-alive timeout, as node:http's.
    this.activeTick = this.settings.sweep.tick;
    res.emitClose();
    const socket = this.socket;
    if (err != null || socket.destroyed) return;
    if (res.last || !res.shouldKeepAlive) {
      this.pending = null;
      this.closing = true;
      // As node:http: the socket closes once the FIN is out, without waiting for the client's.
      socket.on('finish', onSocketFinish);
      socket.end();
      return;
    }
    const body = this.body;
    if (body !== null) {
      // Answered before its body was whole: the rest is read and dropped, as node:http dumps it.
      body.removeAllListeners('data');
      body.resume();
      return;
    }
    this.next();
  }

  /** Goes on with the next request the client sent, if any. */
  private next(): void {
    const next = this.pending;
    if (next !== null) {
      this.pending = null;
      this.consume(next);
    }
    // Handed to node:http, which reads on by itself; else read on unless pipelined bytes wait.
    if (this.settings.open.has(this)) this.throttle();
  }

  /** The client closed its side: a request in flight is abandoned (node:http does the same). */
  onEnd(): void {
    if (this.current !== null || this.bodyLeft > 0) this.socket.destroy();
    else this.socket.end();
  }

  onClose(): void {
    this.settings.open.delete(this);
    const body = this.body;
    if (body !== null) {
      this.body = null;
      body.destroy(abortedError());
    }
    const res = this.current;
    if (res === null) return;
    this.current = null;
    res.emitClose();
  }

  onSweep(tick: number): void {
    const ticks = this.served === 0 ? this.settings.sweep.headersTicks : this.settings.sweep.keepAliveTicks;
    if (ticks === 0 || tick - this.activeTick < ticks) return;
    // As a socket timer, which the 408's write re-arms: the next check is a whole timeout later.
    this.activeTick = tick;
    this.onTimeout();
  }

  private onTimeout(): void {
    // A slow backend or upload is the backend timeouts' business, not the client connection's.
    // A body still coming after its answer went out is only being dropped: as node:http, the
    // keep-alive timeout ends the connection when it stalls.
    if (this.current !== null) return;
    if (this.served === 0 && this.socket.writable) this.socket.end(requestTimeout);
    else this.socket.destroy();
  }

  onDrain(): void {
    this.current?.emit('drain');
  }

  /** Closes the connection: now if idle, else once its response is out (`last`). */
  close(force: boolean): void {
    if (force || this.idle) this.socket.destroy();
  }
}
