import type { Socket } from 'node:net';
import type { BackendDispatchHandler, BackendDispatchOptions, RawFields } from '../dispatcher.js';
import { writeStreamedBody, type BodyTarget } from './body-writer.js';
import { ConnectionBase, onSocketData, onSocketEnd, timerBody, timerHeaders, timerIdle, timerNone, type ConnectionOwner } from './connection-base.js';
import { BadResponseError, RequestLengthMismatchError, SocketClosedError } from '../client-errors.js';
import { requestHead } from './request-head.js';
import { keepAliveHintMs } from './response-head.js';
import type { ResponseSink } from './response-parser.js';

/** undici's keepAliveTimeoutThreshold: a Keep-Alive hint is trusted this much less, for the time the next request takes to arrive. */
const keepAliveMarginMs = 2000;
const noBytes = Buffer.alloc(0);

export type { ConnectionOwner };

function totalLength(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const chunk of chunks) n += chunk.length;
  return n;
}

/**
 * One HTTP/1.1 connection to a backend, one attempt at a time (no pipelining): writes the
 * request, parses the response (it is the parser's sink) and reports both to the attempt's
 * handler with undici's callbacks.
 */
export class H1Connection extends ConnectionBase implements ResponseSink, BodyTarget {
  /** Set by requestHead: the Content-Length the fields declared, -1 for none. */
  declaredLength = -1;
  /** Attempts this connection carried. */
  attempt = 0;
  /** The handler's resume, made once per connection. */
  readonly resume: () => void;

  private bodyTimeoutMs = 0;
  private idleTimeoutMs: number;
  private requestDone = false;
  private upgradeRequest = false;
  private headReceived = false;
  /** The response completed; afterResponse decides about the connection. */
  private responded = false;
  private feeding = false;
  private resumedWhileFeeding = false;
  /** The socket was paused: a chunk came while the handler had paused the response. */
  private socketPaused = false;
  private upgradeFields: string[] | null = null;

  constructor(owner: ConnectionOwner, socket: Socket, secure: boolean, maxHeaderBytes: number, options: BackendDispatchOptions, handler: BackendDispatchHandler) {
    super(owner, socket, secure, maxHeaderBytes, options, handler);
    this.idleTimeoutMs = owner.keepAliveTimeoutMs;
    this.resume = this.resumeBody.bind(this);
    socket.on('data', onSocketData);
    socket.on('end', onSocketEnd);
  }

  /** Starts one attempt on this connected, unused connection. */
  run(options: BackendDispatchOptions, handler: BackendDispatchHandler): void {
    const owner = this.owner;
    const body = options.body as Buffer | string | readonly Buffer[] | AsyncIterable<Buffer> | null | undefined;
    // A body known whole: one Buffer, or the chunks it was read in.
    const whole = typeof body === 'string' ? Buffer.from(body) : Buffer.isBuffer(body) || Array.isArray(body) ? (body as Buffer | readonly Buffer[]) : null;
    const wholeLength = whole === null ? -1 : Array.isArray(whole) ? totalLength(whole) : whole.length;
    const upgrade = typeof options.upgrade === 'string' ? options.upgrade : null;
    let head: string;
    try {
      head = requestHead(this, options.method, options.path, options.headers as readonly string[] | null, owner.hostHeader, whole !== null ? wholeLength : body == null ? -2 : -1, upgrade);
      if (whole !== null && this.declaredLength !== -1 && this.declaredLength !== wholeLength) throw new RequestLengthMismatchError(this.declaredLength, wholeLength);
    } catch (err) {
      owner.released(this);
      handler.onError(err as Error);
      return;
    }
    this.handler = handler;
    this.attempt++;
    this.written = false;
    this.requestDone = false;
    this.headReceived = false;
    this.responded = false;
    this.upgradeRequest = upgrade !== null;
    this.headersTimeoutMs = options.headersTimeout ?? owner.headersTimeoutMs;
    this.bodyTimeoutMs = options.bodyTimeout ?? owner.bodyTimeoutMs;
    this.parser.start(this, options.method === 'HEAD', upgrade !== null);
    owner.running++;
    // The idle timer of a reused connection is off; the head timer starts once the request is out.
    this.timerKind = timerNone;
    this.socket.ref();
    const attempt = this.attempt;
    handler.onConnect(this.abort);
    if (this.handler !== handler || this.attempt !== attempt) return;
    const socket = this.socket;
    if (whole === null && body != null) {
      void writeStreamedBody(this, head, body as AsyncIterable<Buffer>, this.declaredLength, options.trailersFrom);
      return;
    }
    this.written = true;
    if (whole === null || wholeLength === 0) {
      socket.write(head, 'latin1');
    } else {
      // Head and a whole body in one writev.
      socket.cork();
      socket.write(head, 'latin1');
      if (Array.isArray(whole)) {
        for (const chunk of whole) if (chunk.length !== 0) socket.write(chunk);
      } else socket.write(whole as Buffer);
      socket.uncork();
    }
    this.requestSent();
  }

  requestSent(): void {
    this.requestDone = true;
    if (!this.headReceived && this.handler !== null) this.arm(timerHeaders, this.headersTimeoutMs);
  }

  // ---- the parser's sink -----------------------------------------------------------------

  onResponseHead(status: number, reason: string, fields: string[]): boolean {
    const handler = this.handler as BackendDispatchHandler;
    if (status < 200) {
      if (this.parser.upgraded) this.upgradeFields = fields;
      else handler.onHeaders(status, fields, this.resume, reason);
      return true;
    }
    this.headReceived = true;
    const hint = this.parser.head.keepAliveHint;
    this.idleTimeoutMs = this.owner.keepAliveTimeoutMs;
    if (hint !== '') {
      // As undici: the backend's idle timeout less a margin, within keepAliveMaxTimeout.
      const hintMs = keepAliveHintMs(hint);
      if (hintMs >= 0) {
        const ms = Math.min(hintMs - keepAliveMarginMs, this.owner.keepAliveMaxTimeoutMs);
        if (ms <= 0) this.parser.reusable = false;
        else this.idleTimeoutMs = ms;
      }
    }
    this.arm(timerBody, this.bodyTimeoutMs);
    return handler.onHeaders(status, fields, this.resume, reason);
  }

  onResponseBody(chunk: Buffer): boolean {
    if (this.timerKind === timerBody) this.refreshTimer();
    return (this.handler as BackendDispatchHandler).onData(this.kept(chunk));
  }

  onResponseComplete(trailers: string[] | null): void {
    this.timerKind = timerNone;
    const handler = this.handler as BackendDispatchHandler;
    const attempt = this.attempt;
    handler.onComplete(trailers);
    // An abort from within onComplete (a head Node refused) has failed the attempt instead.
    if (this.handler !== handler || this.attempt !== attempt) return;
    this.handler = null;
    this.owner.running--;
    this.responded = true;
    // An answer before the whole body went out: stop sending it (the connection closes after).
    const iterator = this.bodyIterator;
    if (iterator !== null) {
      this.bodyIterator = null;
      iterator.return?.().catch(() => {});
    }
  }

  // ---- the socket ------------------------------------------------------------------------

  onSocketData(chunk: Buffer): void {
    if (this.handler === null) {
      // Bytes on a connection with no attempt (RFC 9112 §9.3: no pipelining): it cannot be trusted.
      this.socket.destroy();
      return;
    }
    // Bytes before the request went out (a 408 on an idle connection) answer nothing we sent.
    if (!this.written) return this.lost(new BadResponseError('the backend sent bytes before the request'));
    if (this.paused) {
      // Only a read while paused stops the socket: the relay's pause for a chunk bigger than the
      // client's buffer usually ends within the tick, and a pause and resume per 64 KiB cost more.
      this.held.push(this.kept(chunk));
      if (!this.socketPaused) {
        this.socketPaused = true;
        this.socket.pause();
      }
      return;
    }
    this.feed(chunk, 0);
  }

  private feed(buf: Buffer, offset: number): void {
    const handler = this.handler;
    const attempt = this.attempt;
    let end: number;
    this.feeding = true;
    this.resumedWhileFeeding = false;
    try {
      end = this.parser.execute(buf, offset);
    } catch (err) {
      this.feeding = false;
      if (this.handler === handler && this.attempt === attempt) this.fail(err as Error);
      return;
    }
    this.feeding = false;
    if (this.handler !== handler || this.attempt !== attempt) {
      if (this.responded) this.afterResponse(end < buf.length || this.held.length !== 0);
      return;
    }
    if (this.parser.upgraded) return this.upgrade(buf, end);
    if (!this.parser.paused) return;
    if (this.resumedWhileFeeding) {
      this.resumedWhileFeeding = false;
      return this.feed(buf, end);
    }
    this.paused = true;
    if (end < buf.length) this.held.unshift(this.kept(buf.subarray(end)));
    this.timerKind = timerNone;
  }

  private resumeBody(): void {
    if (this.feeding) {
      this.resumedWhileFeeding = true;
      return;
    }
    if (!this.paused || this.handler === null) return;
    this.paused = false;
    if (this.socketPaused) {
      this.socketPaused = false;
      this.socket.resume();
    }
    this.arm(timerBody, this.bodyTimeoutMs);
    const handler = this.handler;
    const attempt = this.attempt;
    const held = this.held;
    // Nothing held: the parser still runs, to end a body whose last byte came before the pause.
    if (held.length === 0) this.feed(noBytes, 0);
    while (held.length !== 0 && !this.paused && this.handler === handler && this.attempt === attempt) {
      this.feed(held.shift() as Buffer, 0);
    }
    if (this.ended && !this.paused && this.handler === handler) this.onSocketEnd();
  }

  /** The response is complete: the connection goes back to the pool, or closes. */
  private afterResponse(extraBytes: boolean): void {
    this.responded = false;
    this.held.length = 0;
    if (extraBytes || !this.parser.reusable || !this.requestDone || this.upgradeRequest || this.ended || this.socket.destroyed) {
      this.socket.destroy();
      return;
    }
    this.owner.released(this);
  }

  /** In the pool's idle stack: closed after the idle timeout unless reused. */
  rest(): void {
    this.idle = true;
    this.arm(timerIdle, this.idleTimeoutMs);
    this.socket.unref();
  }

  private upgrade(buf: Buffer, end: number): void {
    const handler = this.handler as BackendDispatchHandler;
    this.handler = null;
    this.owner.running--;
    this.detach();
    const socket = this.socket;
    socket.off('data', onSocketData);
    socket.off('end', onSocketEnd);
    this.owner.removed(this);
    // Bytes of the new protocol that came with the 101 are read again by its new owner.
    socket.pause();
    const held = this.held.splice(0);
    for (let i = held.length - 1; i >= 0; i--) socket.unshift(held[i] as Buffer);
    if (end < buf.length) socket.unshift(buf.subarray(end));
    if (handler.onUpgrade === undefined) socket.destroy();
    else handler.onUpgrade(101, this.upgradeFields as RawFields, socket);
  }

  onSocketEnd(): void {
    const handler = this.handler;
    // An idle connection the backend ended: closed now, so no request is written after its FIN.
    if (handler === null) {
      this.socket.destroy();
      return;
    }
    if (this.paused) {
      this.ended = true;
      return;
    }
    if (this.parser.readsUntilClose) {
      this.parser.endOfInput();
      if (this.responded) this.afterResponse(false);
      return;
    }
    this.lost(new SocketClosedError(this.parser.idle ? 'the backend closed the connection without a response' : 'the backend closed the connection before the response was complete'));
  }
}
