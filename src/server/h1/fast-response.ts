import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { buildHead, checkField, httpDate, statusLine, type OutgoingFields } from './response-head.js';

/** What a response tells the connection that carries it (fast-connection.ts). */
export interface ResponseOwner {
  readonly socket: net.Socket;
  /** Keep-Alive: timeout=N for this listener, in whole seconds (-1: none). */
  readonly keepAliveSeconds: number;
  /** The final bytes of the response were handed to the socket (or it failed). */
  readonly onFinalWrite: (err?: Error | null) => void;
}

/** Bodies up to this size go out in the same string as their head: one write, no cork. */
const inlineBodyBytes = 2048;

/** The last chunk of a chunked body: the zero-size chunk, trailers, the empty line (RFC 9112 section 7.1). */
const lastChunk = '0\r\n';

/**
 * A response on the listener's own HTTP/1.1 path: the parts of node:http's ServerResponse the
 * proxy uses, writing straight to the socket. The head goes out with the first body bytes (or at
 * the end), as node:http sends it; `headersSent` is true from writeHead() on, as there.
 * 'close' is emitted once: after the last write was handed to the socket, or when the socket
 * closed before that.
 */
export class FastResponse extends EventEmitter {
  statusCode = 200;
  statusMessage: string | undefined = undefined;
  /** The connection may stay open after this response; the proxy clears it to close. */
  shouldKeepAlive: boolean;
  headersSent = false;
  writableEnded = false;
  private readonly owner: ResponseOwner;
  private readonly hasBodyForMethod: boolean;
  private readonly chunkedOk: boolean;
  private hasBody = true;
  private pendingHead: string | null = null;
  private chunked = false;
  /** The connection closes after this response. */
  last = false;
  private trailer = '';
  private closed = false;
  private destroyedFlag = false;

  constructor(owner: ResponseOwner, method: string, keepAlive: boolean, chunkedOk: boolean) {
    super();
    this.owner = owner;
    this.shouldKeepAlive = keepAlive;
    this.hasBodyForMethod = method !== 'HEAD';
    this.chunkedOk = chunkedOk;
  }

  /** The client connection, as ServerResponse's `socket`. */
  get socket(): net.Socket {
    return this.owner.socket;
  }

  get destroyed(): boolean {
    return this.destroyedFlag || this.owner.socket.destroyed;
  }

  get finished(): boolean {
    return this.writableEnded;
  }

  writeHead(status: number, reason?: string | OutgoingFields, fields?: OutgoingFields): this {
    if (this.headersSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    const text = typeof reason === 'string' ? reason : undefined;
    this.storeHead(status, text, typeof reason === 'string' || reason === undefined ? fields : reason, -1);
    return this;
  }

  private storeHead(status: number, text: string | undefined, fields: OutgoingFields | undefined, implicitLength: number): void {
    const line = statusLine(status, text);
    const noBody = status === 204 || status === 304 || (status >= 100 && status <= 199);
    const hasBody = this.hasBodyForMethod && !noBody;
    const framing = buildHead(line, fields, { hasBody, keepAlive: this.shouldKeepAlive, chunkedOk: this.chunkedOk, keepAliveSeconds: this.owner.keepAliveSeconds, implicitLength }, httpDate(Date.now()));
    this.statusCode = status;
    this.statusMessage = text;
    this.hasBody = hasBody;
    this.chunked = framing.chunked;
    this.last = framing.last;
    this.pendingHead = framing.head;
    this.headersSent = true;
  }

  /** RFC 8297: a 103 with Link fields, written at once; only for HTTP/1.1 clients (the relay checks). */
  writeEarlyHints(hints: { readonly link: string | readonly string[] }): void {
    const links = typeof hints.link === 'string' ? [hints.link] : hints.link;
    for (const link of links) if (!linkValue.test(link)) throw Object.assign(new TypeError(`invalid Link value for early hints: ${JSON.stringify(link)}`), { code: 'ERR_INVALID_ARG_VALUE' });
    const value = links.join(', ');
    checkField('Link', value);
    this.owner.socket.write(`HTTP/1.1 103 Early Hints\r\nLink: ${value}\r\n\r\n`, 'latin1');
  }

  addTrailers(fields: Readonly<Record<string, string>> | readonly (readonly [string, string])[]): void {
    let trailer = '';
    const entries = Array.isArray(fields) ? (fields as readonly (readonly [string, string])[]) : Object.entries(fields as Readonly<Record<string, string>>);
    for (const [name, value] of entries) {
      checkField(name, value);
      trailer += `${name}: ${value}\r\n`;
    }
    this.trailer = trailer;
  }

  /** Only HTTP/2 responses are built field by field; this path never is. */
  setHeader(): never {
    throw new Error('setHeader is not supported on the HTTP/1.1 fast path');
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.storeHead(this.statusCode, this.statusMessage, undefined, -1);
    if (!this.hasBody || chunk.length === 0) return this.flushHeadOnly();
    return this.send(chunk, false);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded) return this;
    this.writableEnded = true;
    if (this.destroyed) return this;
    const body = chunk === undefined || chunk.length === 0 || !this.hasBodyForMethod ? null : chunk;
    if (!this.headersSent) this.storeHead(this.statusCode, this.statusMessage, undefined, body === null ? 0 : Buffer.byteLength(body));
    if (body !== null && this.hasBody) this.send(body, true);
    else this.sendEnd();
    return this;
  }

  destroy(): this {
    this.destroyedFlag = true;
    this.owner.socket.destroy();
    return this;
  }

  /** Emits 'close' once (the connection calls it when the response is over, whichever way). */
  emitClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }

  private flushHeadOnly(): boolean {
    const head = this.pendingHead;
    if (head === null) return true;
    this.pendingHead = null;
    return this.owner.socket.write(head, 'latin1');
  }

  /** One body chunk, with the head if still held; `final` ends the message in the same write. */
  private send(chunk: Buffer | string, final: boolean): boolean {
    const socket = this.owner.socket;
    const head = this.pendingHead ?? '';
    this.pendingHead = null;
    const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    const prefix = this.chunked ? `${head}${size.toString(16)}\r\n` : head;
    const suffix = this.chunked ? (final ? `\r\n${lastChunk}${this.trailer}\r\n` : '\r\n') : '';
    const callback = final ? this.owner.onFinalWrite : undefined;
    if (size <= inlineBodyBytes) {
      const body = typeof chunk === 'string' ? Buffer.from(chunk).toString('latin1') : chunk.toString('latin1');
      return socket.write(prefix + body + suffix, 'latin1', callback);
    }
    // Past the head of an unchunked body: the bytes go as they are, in their own write.
    if (prefix.length === 0 && suffix.length === 0) return socket.write(chunk, callback);
    socket.cork();
    if (prefix.length > 0) socket.write(prefix, 'latin1');
    let ok = socket.write(chunk, suffix.length === 0 ? callback : undefined);
    if (suffix.length > 0) ok = socket.write(suffix, 'latin1', callback);
    socket.uncork();
    return ok;
  }

  /** The end of a message whose body (if any) has gone out already. */
  private sendEnd(): void {
    const head = this.pendingHead ?? '';
    this.pendingHead = null;
    const tail = this.hasBody && this.chunked ? `${lastChunk}${this.trailer}\r\n` : '';
    const socket = this.owner.socket;
    if (head.length + tail.length > 0 || socket.writableLength > 0) socket.write(head + tail, 'latin1', this.owner.onFinalWrite);
    // Nothing left to write: no empty write (a system call) just for its callback.
    else process.nextTick(this.owner.onFinalWrite);
  }
}

/** One Link value (RFC 8288 section 3): `<target>` then `; name` or `; name=value` parameters. */
const linkValue = /^<[^<>\s]*>(?:[ \t]*;[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=(?:"[^"\\]*"|[!#$%&'*+.^_`|~0-9A-Za-z-/:]+))?)*$/;
