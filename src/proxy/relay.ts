import type { Backend } from '../upstream/backend.js';
import type { RawFields } from '../upstream/dispatcher.js';
import { noteBodyBytes } from '../body-streams.js';
import { cutOff, finish, logAttemptFailure, publishAttempt } from './completion.js';
import { kExchange, type ExchangeState, type ResponseWithExchange } from './exchange-state.js';
import { responseHeadersForClient } from './headers.js';
import { RelayRefusedError } from './outcome.js';

/**
 * The response relay: interim responses, the final head (held until its first body byte), the
 * body with the client's backpressure, and the end or the cut of the response.
 */

/** Between the links of one Link field (RFC 8288 section 3): a comma before the next `<`. */
const linkListSeparator = /\s*,\s*(?=<)/;

/**
 * Interim responses (RFC 9110 section 15.2): 103 Early Hints with their Link fields go to
 * HTTP/1.1 and HTTP/2 clients only (no 1xx to HTTP/1.0) and only before the final head; the rest are
 * dropped. Node checks each Link value; one it refuses is dropped, as hints are optional.
 */
export function relayInterim(x: ExchangeState, statusCode: number, rawHeaders: RawFields): void {
  if (statusCode !== 103 || (x.req.httpVersionMinor === 0 && x.req.httpVersionMajor === 1) || x.res.headersSent) return;
  const links: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as Buffer | string;
    // Node checks one link per value: a field listing several is split at each `, <`.
    if (name.length === 4 && name.toString('latin1').toLowerCase() === 'link') links.push(...(rawHeaders[i + 1] as Buffer | string).toString('latin1').split(linkListSeparator));
  }
  if (links.length === 0) return;
  try {
    x.res.writeEarlyHints({ link: links });
  } catch {
    // A malformed Link value: the final response still comes.
  }
}

/** Takes the final response head for the client: rewritten fields, the sticky cookie, held until the body. */
export function acceptHead(x: ExchangeState, statusCode: number, rawHeaders: RawFields, resume: () => void, statusText: string): void {
  x.resumeUpstream = resume;
  // No retry once a response has begun: the replay buffer can go.
  if (x.body !== null) x.body.release();
  const upstream = x.upstream;
  const headers = responseHeadersForClient(rawHeaders, x.ctx.responseVia, upstream.forwarding.rewriteLocation ? x.backend : null, x.host, x.ctx.proto);
  // RFC 9110 §8.6: never a Content-Length in a 204; a backend's would have a client wait for a body.
  if (statusCode === 204) dropContentLength(headers);
  const sticky = upstream.sticky;
  if (sticky !== null) {
    // (Re)pin the client when its cookie names no backend or another one.
    const cookie = sticky.setCookieFor(x.backend as Backend, x.stickyId);
    if (cookie !== undefined) headers.push('set-cookie', cookie);
  }
  x.headStatus = statusCode;
  x.headText = statusText;
  x.headFields = headers;
  x.responseLength = contentLengthOf(headers);
}

function dropContentLength(headers: string[]): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === 'content-length') headers.splice(i, 2);
}

/** The Content-Length of a client head (names lower-cased by responseHeadersForClient); -1 for none. */
function contentLengthOf(headers: readonly string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== 'content-length') continue;
    // The backend client's parser has checked the digits already; anything else means "unknown".
    const length = Number(headers[i + 1]);
    return Number.isSafeInteger(length) && length >= 0 ? length : -1;
  }
  return -1;
}

/**
 * Hands the held response head to Node. False when Node refuses the backend's status or a
 * field: the attempt is then aborted as a protocol error, and nothing has reached the client.
 */
export function writeHeldHead(x: ExchangeState, headOnly = false): boolean {
  const headers = x.headFields;
  if (headers === null) return true;
  x.headFields = null;
  const res = x.res;
  if (x.ctx.closing) res.shouldKeepAlive = false;
  try {
    if (headOnly && x.req.httpVersionMajor === 2) setHeadOnly(res, x.headStatus, headers);
    else res.writeHead(x.headStatus, x.headText === '' ? undefined : x.headText, headers);
  } catch (err) {
    x.responseStarted = false;
    x.abortAttempt?.(new RelayRefusedError(err as Error));
    return false;
  }
  return true;
}

/**
 * A response with neither body nor trailers to an HTTP/2 client: the head is set, not sent, so
 * res.end() sends it as one HEADERS frame with END_STREAM. gRPC's trailers-only response (status
 * in the head) is read as such only then; HEADERS and an empty DATA frame would leave it without status.
 */
function setHeadOnly(res: ExchangeState['res'], status: number, headers: readonly string[]): void {
  res.statusCode = status;
  const byName = new Map<string, string[]>();
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const values = byName.get(name);
    if (values === undefined) byName.set(name, [headers[i + 1] as string]);
    else values.push(headers[i + 1] as string);
  }
  for (const [name, values] of byName) res.setHeader(name, values.length === 1 ? (values[0] as string) : values);
}

/** One body chunk to the client; false pauses the backend until the client drains. */
export function relayChunk(x: ExchangeState, chunk: Buffer): boolean {
  // undici hands over an empty chunk each time it resumes after a pause: writing it would cost
  // a write(fd, NULL, 0) and a pass through node:http's write path per 64 KiB of a large body.
  if (chunk.length === 0) return true;
  if (x.headFields !== null) {
    // The whole body in its first chunk: undici's onComplete follows in the same parse, and
    // res.end(chunk) then writes head and body without a cork, an uncork tick and a second write.
    if (chunk.length === x.responseLength && x.lastChunk === null) {
      x.lastChunk = chunk;
      return true;
    }
    if (!writeHeldHead(x)) return false;
    // A body longer than it said (the client's parser stops that): the held chunk still goes first.
    const held = x.lastChunk;
    if (held !== null) {
      x.lastChunk = null;
      x.bytesSent += held.length;
      x.res.write(held);
    }
  }
  x.bytesSent += chunk.length;
  noteBodyBytes(chunk.length);
  if (x.res.write(chunk)) return true;
  x.res.once('drain', onResponseDrain);
  return false;
}

function onResponseDrain(this: ResponseWithExchange): void {
  const resume = this[kExchange]?.resumeUpstream;
  if (resume != null) resume();
}

/** The backend's response is complete: so is the client's. */
export function relayEnd(x: ExchangeState): void {
  publishAttempt(x, 'response', false);
  const last = x.lastChunk;
  if (last === null) x.res.end();
  else {
    x.lastChunk = null;
    x.bytesSent += last.length;
    x.res.end(last);
  }
  finish(x, 'ok');
}

/** The backend failed after part of the response went out: cut it so the client sees an incomplete message. */
export function cutResponse(x: ExchangeState, err: Error): void {
  publishAttempt(x, 'reset', false);
  logAttemptFailure(x, err, 'reset', 'response cut short');
  cutOff(x.res);
  finish(x, 'cut');
}
