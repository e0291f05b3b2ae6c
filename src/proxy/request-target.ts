import type { IncomingMessage } from 'node:http';
import { ErrorCodes, type ErrorCode } from '../errors.js';

/** Admission: what the proxy reads from a client request's head before routing and forwarding it. */

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

/**
 * The request body's declared length: 0 for none, -1 when chunked (length unknown). An HTTP/2
 * stream without Content-Length has a body unless its HEADERS frame ended the stream (RFC 9113
 * section 8.1).
 */
export function declaredBodyLength(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return Number(raw[i + 1]);
  }
  if (req.httpVersionMajor === 2) return (req as { stream?: { endAfterHeaders: boolean } }).stream?.endAfterHeaders === false ? -1 : 0;
  return 0;
}
