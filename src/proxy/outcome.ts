import { ErrorCodes, type ErrorCode } from '../errors.js';
import type { FailureKind } from './retry.js';

/** How an attempt ended, in the terms of the retry rules, and the error a client gets for it. */

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
 * parser errors carry no code, only their class name; Switchyard's HTTP/1.1 client keeps
 * undici's codes where undici has the same error.
 */
function isProtocolError(err: Error, code: string): boolean {
  return (
    err.name === 'HTTPParserError' ||
    code.startsWith('HPE_') ||
    code === 'UND_ERR_HEADERS_OVERFLOW' ||
    code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
    code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE' ||
    code === 'SWY_ERR_UPSTREAM_PROTOCOL' ||
    // Switchyard's HTTP/1.1 client (upstream/h1/errors.ts): a response that breaks RFC 9112.
    code === 'SWY_ERR_BAD_RESPONSE' ||
    // undici 7 refuses a 100 it did not ask for (we never forward Expect) and a 101 it did not ask for.
    (code === 'UND_ERR_SOCKET' && (err.message === 'bad response' || err.message === 'bad upgrade'))
  );
}

/**
 * An HTTP/2 backend refused the stream with RST_STREAM REFUSED_STREAM: it did no processing
 * (RFC 9113 §8.7), so the request is as safe to send again as one that never connected.
 * undici hands on Node's ERR_HTTP2_STREAM_ERROR, named by its code only in the message.
 */
export function isRefusedStream(err: Error): boolean {
  return (err as { code?: string }).code === 'ERR_HTTP2_STREAM_ERROR' && err.message.endsWith('NGHTTP2_REFUSED_STREAM');
}

/**
 * An HTTP/2 backend sent GOAWAY with NO_ERROR: it is shutting down or rotating connections
 * (RFC 9113 §6.8). undici 7 then fails every stream in flight on that connection with this one
 * error, whether or not the backend had taken it (it closes the socket at once instead of
 * letting streams up to the last-stream-id finish), so it may have been processed.
 */
export function isGracefulGoaway(err: Error): boolean {
  return (err as { code?: string }).code === 'UND_ERR_SOCKET' && err.message === 'HTTP/2: "GOAWAY" frame received with code 0';
}

/** A failure that says nothing about the backend's health: never counted, never marks it down. */
export function isBackendExcused(err: Error): boolean {
  return isRefusedStream(err) || isGracefulGoaway(err);
}

/** What kind of failure an attempt's error is, for the retry rules. */
export function classify(err: Error, connected: boolean): FailureKind | 'invalid' {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_INVALID_ARG') return 'invalid';
  // Both clients (undici's Pool, upstream/h1) call onConnect only once a connected socket is
  // about to carry the request: before it, nothing reached the backend. A refused
  // stream was not processed either: retried like a connect failure, whatever the method.
  if (!connected || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNREFUSED' || isRefusedStream(err)) return 'connect';
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

/** Aborts a response whose status is listed in retryStatuses; onError then runs the planned retry. */
export const statusRetryError = new Error('the response status is listed in retryStatuses');
