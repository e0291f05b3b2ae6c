import { STATUS_CODES } from 'node:http';

/**
 * The response head of the listener's own HTTP/1.1 path, written as node:http writes it for the
 * same request (the status line, the fields in order, then Date, Connection and Keep-Alive, and
 * Transfer-Encoding: chunked for a body of unknown length), and refused as node:http refuses
 * it: a status outside 100-999, a name that is not a token, a value or reason phrase with a
 * control character (RFC 9110 sections 5.5 and 15) throw, so the caller can answer 502 instead.
 */

export type OutgoingFields = readonly string[] | Readonly<Record<string, string | number | readonly string[] | undefined>>;

/** What the head decided about the message after it. */
export interface HeadFraming {
  /** The head, ending with its empty line. */
  readonly head: string;
  /** The body is sent in chunks (RFC 9112 section 7.1). */
  readonly chunked: boolean;
  /** The connection closes after this response (Connection: close, or a body delimited by the close). */
  readonly last: boolean;
}

/** What the head depends on besides its fields. */
export interface HeadContext {
  /** The message may have a body: not for HEAD, 1xx, 204 and 304 (RFC 9110 section 6.4.1). */
  readonly hasBody: boolean;
  /** The connection may stay open after it. */
  readonly keepAlive: boolean;
  /** The client reads chunked bodies (HTTP/1.1). */
  readonly chunkedOk: boolean;
  /** Keep-Alive: timeout=N, in whole seconds (0 for under one, as node:http); -1: no Keep-Alive field. */
  readonly keepAliveSeconds: number;
  /** The body length when end() gave the whole body before any head was written; -1: unknown. */
  readonly implicitLength: number;
}

const token = /^[\^_`a-zA-Z\-0-9!#$%&'*+.|~]+$/;
const invalidValue = /[^\t\x20-\x7e\x80-\xff]/;

class InvalidHeadError extends TypeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** Throws unless `name: value` may be written as a field line. */
export function checkField(name: string, value: string): void {
  if (!token.test(name)) throw new InvalidHeadError('ERR_INVALID_HTTP_TOKEN', `header name must be a valid HTTP token ["${name}"]`);
  if (invalidValue.test(value)) throw new InvalidHeadError('ERR_INVALID_CHAR', `invalid character in header content ["${name}"]`);
}

/** The status line for `status`; throws for a status or reason phrase that cannot be sent. */
export function statusLine(status: number, reason: string | undefined): string {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new InvalidHeadError('ERR_HTTP_INVALID_STATUS_CODE', `invalid status code: ${status}`);
  const text = reason ?? STATUS_CODES[status] ?? 'unknown';
  if (invalidValue.test(text)) throw new InvalidHeadError('ERR_INVALID_CHAR', 'invalid character in statusMessage');
  return `HTTP/1.1 ${status} ${text}\r\n`;
}

/** Fields the framing rules look at. */
const Seen = { length: 1, te: 2, date: 4, connection: 8, trailer: 16, close: 32, chunkedTe: 64 } as const;

/** Builds the head after `line`; throws as described above. */
export function buildHead(line: string, fields: OutgoingFields | undefined, ctx: HeadContext, date: string): HeadFraming {
  let head = line;
  let seen = 0;
  if (Array.isArray(fields)) {
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = String(fields[i + 1]);
      checkField(name, value);
      head += `${name}: ${value}\r\n`;
      if (name.length >= 4 && name.length <= 17) seen |= fieldFlag(name, value);
    }
  } else if (fields !== undefined) {
    const record = fields as Readonly<Record<string, string | number | readonly string[] | undefined>>;
    for (const name of Object.keys(record)) {
      const value = record[name];
      if (value === undefined) continue;
      for (const one of Array.isArray(value) ? value : [value]) {
        const text = String(one);
        checkField(name, text);
        head += `${name}: ${text}\r\n`;
        if (name.length >= 4 && name.length <= 17) seen |= fieldFlag(name, text);
      }
    }
  }
  if ((seen & Seen.date) === 0) head += `Date: ${date}\r\n`;
  let chunked = (seen & Seen.chunkedTe) !== 0;
  let last = (seen & Seen.close) !== 0;
  let keepAlive = ctx.keepAlive;
  if ((seen & Seen.connection) === 0) {
    if (keepAlive && ((seen & Seen.length) !== 0 || ctx.chunkedOk)) {
      head += 'Connection: keep-alive\r\n';
      if (ctx.keepAliveSeconds >= 0) head += `Keep-Alive: timeout=${ctx.keepAliveSeconds}\r\n`;
    } else {
      last = true;
      keepAlive = false;
      head += 'Connection: close\r\n';
    }
  }
  if ((seen & (Seen.length | Seen.te)) === 0) {
    if (!ctx.hasBody) chunked = false;
    else if (!ctx.chunkedOk) last = true;
    else if ((seen & Seen.trailer) === 0 && ctx.implicitLength >= 0) head += `Content-Length: ${ctx.implicitLength}\r\n`;
    else {
      head += 'Transfer-Encoding: chunked\r\n';
      chunked = true;
    }
  }
  // A Trailer field promises trailers that only a chunked body can carry.
  if (!chunked && (seen & Seen.trailer) !== 0) throw new InvalidHeadError('ERR_HTTP_TRAILER_INVALID', 'trailers are invalid with this transfer encoding');
  return { head: `${head}\r\n`, chunked, last: last || !keepAlive };
}

function fieldFlag(name: string, value: string): number {
  switch (name.toLowerCase()) {
    case 'content-length':
      return Seen.length;
    case 'transfer-encoding':
      return Seen.te | (/(?:^|,)\s*chunked\s*$/i.test(value) ? Seen.chunkedTe : 0);
    case 'date':
      return Seen.date;
    case 'trailer':
      return Seen.trailer;
    case 'connection':
      return Seen.connection | (/(?:^|\W)close(?:$|\W)/i.test(value) ? Seen.close : 0);
    default:
      return 0;
  }
}

let dateSecond = -1;
let dateText = '';

/** The Date field's value (RFC 9110 section 6.6.1), made once per second. */
export function httpDate(nowMs: number): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}
