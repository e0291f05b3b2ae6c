import { relayableTrailers } from '../trailer-fields.js';
import { InvalidRequestError } from '../client-errors.js';
import { spellsLower } from './field-names.js';

/** Methods whose requests carry content: without a body they get `content-length: 0` (RFC 9110 §8.6). */
const expectsContent = new Set(['POST', 'PUT', 'PATCH', 'QUERY', 'PROPFIND', 'PROPPATCH']);

/** A line break or NUL in a name or value would end the field early: request smuggling. */
const lineBreak = /[\r\n\0]/;
/** The request-target: visible ASCII and obs-text (RFC 9112 §3.2), as undici checks it. */
const invalidTarget = /[^\x21-\xff]/;

/** What requestHead found in the fields besides the head text. */
export interface HeadOut {
  /** The Content-Length the fields declared (it is written by requestHead, not copied); -1 for none. */
  declaredLength: number;
}

/**
 * The request head of one attempt as one latin1 string: request line, the fields as given
 * (already filtered of hop-by-hop ones by the proxy), Host when the fields have none, the
 * framing of `body` and the connection's own fields. `bodyLength`: the whole body's length,
 * -1 for a streamed body (chunked unless the fields declare a length), -2 for none.
 * Throws InvalidRequestError for a request that cannot be sent.
 */
export function requestHead(out: HeadOut, method: string, path: string, fields: readonly string[] | null, host: string, bodyLength: number, upgrade: string | null): string {
  if (invalidTarget.test(path) || (path.charCodeAt(0) !== 0x2f && path !== '*')) throw new InvalidRequestError('invalid request path');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let declared = -1;
  let hostSeen = false;
  if (fields !== null) {
    if (!Array.isArray(fields)) throw new InvalidRequestError('headers must be a flat [name, value, …] array');
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      const value = fields[i + 1] as string;
      if (lineBreak.test(value) || lineBreak.test(name)) throw new InvalidRequestError(`invalid ${name} header`);
      if (spellsLower(name, 'content-length')) {
        const length = /^\d+$/.test(value) ? Number(value) : Number.NaN;
        if (!Number.isSafeInteger(length) || (declared !== -1 && declared !== length)) throw new InvalidRequestError('invalid content-length header');
        declared = length;
        continue;
      }
      if (spellsLower(name, 'host')) {
        if (hostSeen) throw new InvalidRequestError('duplicate host header');
        hostSeen = true;
      }
      head += `${name}: ${value}\r\n`;
    }
  }
  if (!hostSeen) head += `host: ${host}\r\n`;
  out.declaredLength = declared;
  if (bodyLength >= 0) {
    // A whole body: its own length (a declared one must agree, checked by the caller).
    if (bodyLength > 0 || expectsContent.has(method)) head += `content-length: ${bodyLength}\r\n`;
  } else if (bodyLength === -1) {
    head += declared >= 0 ? `content-length: ${declared}\r\n` : 'transfer-encoding: chunked\r\n';
  } else if (expectsContent.has(method)) {
    head += 'content-length: 0\r\n';
  }
  if (upgrade !== null) return `${head}connection: upgrade\r\nupgrade: ${upgrade}\r\n\r\n`;
  return `${head}connection: keep-alive\r\n\r\n`;
}

/**
 * The last chunk and trailer section of a chunked request (RFC 9112 §7.1.2) from the client's
 * trailers (node:http fills them in at the end of the body): fields RFC 9110 §6.5.1 forbids in
 * trailers and malformed ones are dropped.
 */
export function lastChunk(trailers: NodeJS.Dict<string> | undefined): string {
  let text = '0\r\n';
  const fields = trailers === undefined ? null : relayableTrailers(trailers);
  for (const name in fields) {
    const value = (fields as Record<string, string | string[]>)[name] as string | string[];
    if (typeof value === 'string') text += `${name}: ${value}\r\n`;
    else for (const one of value) text += `${name}: ${one}\r\n`;
  }
  return `${text}\r\n`;
}
