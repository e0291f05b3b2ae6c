import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { Readable } from 'node:stream';
import type { SimpleHead } from './request-head.js';

/**
 * Requests served by the listener's own HTTP/1.1 path: the parts of node:http's IncomingMessage
 * that the proxy reads. FastRequest has no body and is complete on arrival; FastBodyRequest is a
 * Readable of a Content-Length body, fed by the connection (request-head.ts sends every other
 * framing to node:http).
 */
interface RequestFields {
  method: string;
  url: string;
  httpVersion: string;
  httpVersionMajor: number;
  httpVersionMinor: number;
  rawHeaders: string[];
  socket: net.Socket;
  trailers: NodeJS.Dict<string>;
  rawTrailers: string[];
}

/** Sets what both kinds of request say of their head. */
function describe(request: RequestFields, head: SimpleHead, socket: net.Socket): void {
  request.method = head.method;
  request.url = head.url;
  request.httpVersionMajor = 1;
  request.httpVersionMinor = head.minor;
  request.httpVersion = head.minor === 1 ? '1.1' : '1.0';
  request.rawHeaders = head.rawHeaders;
  request.socket = socket;
  request.trailers = emptyTrailers;
  request.rawTrailers = [];
}

// The fields describe() sets, declared once for both classes (a class merges with its interface).
export interface FastRequest extends RequestFields {}
export class FastRequest extends EventEmitter {
  readonly complete = true;
  private headersObject: NodeJS.Dict<string | string[]> | null = null;
  private ended = false;

  constructor(head: SimpleHead, socket: net.Socket) {
    super();
    describe(this, head, socket);
  }

  /** node:http's `headers`, built on first read with its rules for repeated fields. */
  get headers(): NodeJS.Dict<string | string[]> {
    return (this.headersObject ??= headersOf(this.rawHeaders));
  }

  /** There is no body: nothing is ever there to read. */
  read(): null {
    return null;
  }

  /** As a Readable with nothing in it: whoever reads (a 'data' or 'end' listener, resume()) gets 'end'. */
  override on(event: string | symbol, listener: (...args: any[]) => void): this {
    super.on(event, listener);
    if (event === 'data' || event === 'end') this.resume();
    return this;
  }

  resume(): this {
    if (!this.ended) {
      this.ended = true;
      process.nextTick(emitEnd, this);
    }
    return this;
  }

  pause(): this {
    return this;
  }
}

function emitEnd(request: FastRequest): void {
  request.emit('end');
}

/** Where a body request asks for more bytes (the connection resumes its socket). */
export interface BodySource {
  readBody(): void;
}

/** An error as node:http's for a client gone before its body was whole. */
export function abortedError(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
}

const bodyHighWaterMark = 128 * 1024;

export interface FastBodyRequest extends RequestFields {}
export class FastBodyRequest extends Readable {
  /** Every byte of the body has arrived. */
  complete = false;
  private readonly source: BodySource;
  private headersObject: NodeJS.Dict<string | string[]> | null = null;

  constructor(head: SimpleHead, socket: net.Socket, source: BodySource) {
    // Room for a whole socket read: a reader attached in this tick flows from the next one, and a
    // 64 KiB read must not stop the socket in between (two epoll_ctl calls per body).
    super({ highWaterMark: bodyHighWaterMark });
    describe(this, head, socket);
    this.source = source;
  }

  get headers(): NodeJS.Dict<string | string[]> {
    return (this.headersObject ??= headersOf(this.rawHeaders));
  }

  override _read(): void {
    this.source.readBody();
  }

  /** As IncomingMessage: an error is emitted only to someone listening for it. */
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    callback(this.listenerCount('error') > 0 ? err : null);
  }
}

const emptyTrailers: NodeJS.Dict<string> = Object.freeze({}) as NodeJS.Dict<string>;

/** Fields of which node:http keeps the first and drops the others. */
const firstOnly = new Set(['age', 'authorization', 'content-length', 'content-type', 'etag', 'expires', 'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after', 'server', 'user-agent']);

/** The headers object node:http builds: names lower-cased, Set-Cookie a list, Cookie joined by "; ", others by ", ". */
function headersOf(raw: readonly string[]): NodeJS.Dict<string | string[]> {
  const headers: NodeJS.Dict<string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const seen = headers[name];
    if (name === 'set-cookie') {
      if (seen === undefined) headers[name] = [value];
      else (seen as string[]).push(value);
    } else if (seen === undefined) headers[name] = value;
    else if (!firstOnly.has(name)) headers[name] = `${seen as string}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  return headers;
}
