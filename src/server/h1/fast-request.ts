import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { SimpleHead } from './request-head.js';

/**
 * A request served by the listener's own HTTP/1.1 path: the parts of node:http's IncomingMessage
 * that the proxy reads, for a request without a body (request-head.ts sends every other one to
 * node:http). It is complete on arrival: there is nothing to read, and no event to wait for.
 */
export class FastRequest extends EventEmitter {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor: number;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  readonly complete = true;
  readonly trailers: NodeJS.Dict<string> = emptyTrailers;
  readonly rawTrailers: string[] = [];
  private headersObject: NodeJS.Dict<string | string[]> | null = null;

  constructor(head: SimpleHead, socket: net.Socket) {
    super();
    this.method = head.method;
    this.url = head.url;
    this.httpVersionMinor = head.minor;
    this.httpVersion = head.minor === 1 ? '1.1' : '1.0';
    this.rawHeaders = head.rawHeaders;
    this.socket = socket;
  }

  /** node:http's `headers`, built on first read with its rules for repeated fields. */
  get headers(): NodeJS.Dict<string | string[]> {
    return (this.headersObject ??= headersOf(this.rawHeaders));
  }

  /** There is no body: nothing is ever there to read. */
  read(): null {
    return null;
  }

  resume(): this {
    return this;
  }

  pause(): this {
    return this;
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
