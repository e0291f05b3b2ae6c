import { BadResponseError } from '../client-errors.js';
import { spellsLower } from './field-names.js';

/** The parts of a status line. */
export interface StatusLine {
  minor: number;
  status: number;
  reason: string;
}

/** What a response head says about framing and the connection, gathered field by field. */
export interface HeadFacts extends StatusLine {
  /** -1: no Content-Length field. */
  contentLength: number;
  /** The Transfer-Encoding fields joined by commas; '' for none. */
  transferEncoding: string;
  /** Connection lists `close` / `keep-alive` (RFC 9112 §9.3). */
  close: boolean;
  keepAlive: boolean;
  /** The Keep-Alive field ('' for none), whose `timeout=N` may shorten the idle timeout. */
  keepAliveHint: string;
  /**
   * The fields of the backend's previous final head (the parser's HeadMemo, taken at the
   * head's start): a field line that repeats the one at its place there reuses its checked
   * strings (parseFieldLine).
   */
  previousFields: readonly string[];
}

export function resetHead(head: HeadFacts): void {
  head.contentLength = -1;
  head.transferEncoding = '';
  head.close = false;
  head.keepAlive = false;
  head.keepAliveHint = '';
}

/** Notes what a field of the head (name lower-cased; value at [vs, ve) of `buf`) says about framing. */
export function parseHead(head: HeadFacts, name: string, value: string, buf: Buffer, vs: number, ve: number): void {
  switch (name) {
    case 'content-length': {
      // RFC 9110 §8.6: digits only; repeated fields must agree.
      if (vs === ve) throw new BadResponseError('an empty Content-Length');
      let length = 0;
      for (let i = vs; i < ve; i++) {
        const digit = (buf[i] as number) - 0x30;
        if (digit < 0 || digit > 9) throw new BadResponseError(`Content-Length "${value}" is not a number`);
        length = length * 10 + digit;
        if (length > Number.MAX_SAFE_INTEGER) throw new BadResponseError('a Content-Length that does not fit');
      }
      if (head.contentLength !== -1 && head.contentLength !== length) throw new BadResponseError('several different Content-Length values');
      head.contentLength = length;
      return;
    }
    case 'transfer-encoding':
      head.transferEncoding = head.transferEncoding === '' ? value : `${head.transferEncoding},${value}`;
      return;
    case 'connection':
      connectionTokens(head, value);
      return;
    case 'keep-alive':
      head.keepAliveHint = value;
      return;
    default:
  }
}

function connectionTokens(head: HeadFacts, value: string): void {
  if (spellsLower(value, 'close')) head.close = true;
  else if (spellsLower(value, 'keep-alive')) head.keepAlive = true;
  else {
    const parts = value.toLowerCase().split(',');
    for (let i = 0; i < parts.length; i++) {
      const token = (parts[i] as string).trim();
      if (token === 'close') head.close = true;
      else if (token === 'keep-alive') head.keepAlive = true;
    }
  }
}

/** The `timeout=N` of a Keep-Alive field in ms, or -1. */
export function keepAliveHintMs(hint: string): number {
  const at = hint.toLowerCase().indexOf('timeout=');
  if (at === -1) return -1;
  let seconds = 0;
  let i = at + 8;
  const start = i;
  for (; i < hint.length; i++) {
    const digit = hint.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) break;
    seconds = seconds * 10 + digit;
  }
  return i === start ? -1 : seconds * 1000;
}

/** Whether the last coding of a Transfer-Encoding list is `chunked`, in any case. */
export function lastTokenIsChunked(te: string): boolean {
  const comma = te.lastIndexOf(',');
  return te.slice(comma + 1).trim().toLowerCase() === 'chunked';
}

/** How a final response's body is delimited (RFC 9112 §6.3): bodyFraming's answers. */
export const framedByLength = 0;
export const framedChunked = 1;
export const framedByClose = 2;

/**
 * How the body of a final response with this head is delimited (RFC 9112 §6.3). `noBody`: the
 * answer to a HEAD, or a 204 or 304, which has no body whatever the head says.
 */
export function bodyFraming(head: HeadFacts, noBody: boolean): number {
  const te = head.transferEncoding;
  if (te !== '' && head.contentLength !== -1) throw new BadResponseError('both Transfer-Encoding and Content-Length (RFC 9112 §6.1)');
  if (noBody) return framedByLength;
  // Chunked last is chunked; any other coding runs until the close.
  if (te !== '') return lastTokenIsChunked(te) ? framedChunked : framedByClose;
  return head.contentLength >= 0 ? framedByLength : framedByClose;
}

/** The connection may carry another request after this response (RFC 9112 §9.3). */
export function reusableAfter(head: HeadFacts, framing: number, noBody: boolean): boolean {
  if (framing === framedByClose) return false;
  // A Transfer-Encoding in an HTTP/1.0 message is faulty framing (RFC 9112 §6.1): close after.
  if (!noBody && head.transferEncoding !== '' && head.minor === 0) return false;
  return head.minor === 1 ? !head.close : head.keepAlive && !head.close;
}
