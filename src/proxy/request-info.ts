import type { IncomingMessage } from 'node:http';
import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { FailureKind } from './retry.js';

/** What the proxy reads from a client request before forwarding it, and how it names failures. */

/** The client's address without the IPv4-mapped IPv6 prefix. */
export function clientAddress(req: IncomingMessage): string {
  const address = req.socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/**
 * The path and query to send upstream, from origin-form (`/x?q`) or absolute-form
 * (`http://host/x?q`, RFC 9112 section 3.2.2) request targets; null for anything else.
 */
export function originFormTarget(url: string): string | null {
  if (url.charCodeAt(0) === 47 /* / */) return url;
  const schemeEnd = url.indexOf('://');
  if (schemeEnd <= 0) return null;
  const scheme = url.slice(0, schemeEnd).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  const pathStart = url.indexOf('/', schemeEnd + 3);
  const queryStart = url.indexOf('?', schemeEnd + 3);
  if (pathStart === -1 || (queryStart !== -1 && queryStart < pathStart)) {
    return queryStart === -1 ? '/' : `/${url.slice(queryStart)}`;
  }
  return url.slice(pathStart);
}

/**
 * Requests llhttp parses but we refuse: HTTP/0.9 (`GET /` without a version) gets 400, a major
 * version above 1 in HTTP/1 framing 505 (RFC 9112 section 2.3), and Transfer-Encoding on HTTP/1.0
 * means faulty framing (RFC 9112 section 6.1), so 400 rather than guessing the body's end.
 */
export function versionRejection(req: IncomingMessage): ErrorCode | null {
  const major = req.httpVersionMajor;
  if (major !== 1) return major === 0 ? ErrorCodes.badRequest : ErrorCodes.versionNotSupported;
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) return ErrorCodes.badRequest;
  return null;
}

/** The request body's declared length: 0 for none, -1 when chunked (length unknown). */
export function declaredBodyLength(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return Number(raw[i + 1]);
  }
  return 0;
}

/** A backend's response head that Node refuses to relay (a status or field it rejects). */
export class RelayRefusedError extends Error {
  readonly code = 'SWY_ERR_UPSTREAM_PROTOCOL';
  constructor(cause: Error) {
    super(`the response cannot be relayed: ${cause.message}`, { cause });
    this.name = 'RelayRefusedError';
  }
}

/**
 * Responses we cannot accept: a protocol error, 502 and never retried (issue 9). undici 7's
 * parser errors carry no code, only their class name.
 */
function isProtocolError(err: Error, code: string): boolean {
  return (
    err.name === 'HTTPParserError' ||
    code.startsWith('HPE_') ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' ||
    code === 'SWY_ERR_UPSTREAM_PROTOCOL' ||
    // undici 7 refuses a 100 it did not ask for (we never forward Expect) and a 101 it did not ask for.
    (code === 'UND_ERR_SOCKET' && (err.message === 'bad response' || err.message === 'bad upgrade'))
  );
}

/** What kind of failure an attempt's error is, for the retry rules. */
export function classify(err: Error, connected: boolean): FailureKind | 'invalid' {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_INVALID_ARG') return 'invalid';
  // undici calls onConnect only once a connected socket starts writing the request.
  if (!connected || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNREFUSED') return 'connect';
  if (isProtocolError(err, code)) return 'protocol';
  return 'reset';
}

/** The error a client gets for a failure that is not retried. */
export const errorCodeByKind: Readonly<Record<FailureKind | 'invalid', ErrorCode>> = {
  connect: ErrorCodes.upstreamConnect,
  reset: ErrorCodes.upstreamReset,
  timeout: ErrorCodes.upstreamTimeout,
  protocol: ErrorCodes.upstreamProtocol,
  // Unused: a listed status that is not retried is relayed as it is.
  status: ErrorCodes.upstreamProtocol,
  invalid: ErrorCodes.badRequest,
};
