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
    // Switchyard's HTTP/1.1 client (upstream/client-errors.ts): a response that breaks RFC 9112.
    code === 'SWY_ERR_BAD_RESPONSE' ||
    // undici 7 refuses a 100 it did not ask for (we never forward Expect) and a 101 it did not ask for.
    (code === 'UND_ERR_SOCKET' && (err.message === 'bad response' || err.message === 'bad upgrade'))
  );
}

/**
 * An HTTP/2 backend did not process the stream (RFC 9113 §6.8, §8.7): it refused it with
 * RST_STREAM REFUSED_STREAM, or it was above the last-stream-id of the backend's GOAWAY, or the
 * connection closed before it was sent. The request is as safe to send again as one that never
 * connected, whatever its method (Switchyard's HTTP/2 client, src/upstream/h2/).
 */
export function isUnprocessed(err: Error): boolean {
  return (err as { code?: string }).code === 'SWY_ERR_UPSTREAM_UNPROCESSED';
}

/** A failure that says nothing about the backend's health: never counted, never marks it down. */
export function isBackendExcused(err: Error): boolean {
  return isUnprocessed(err);
}

/** What kind of failure an attempt's error is, for the retry rules. */
export function classify(err: Error, connected: boolean): FailureKind | 'invalid' {
  const code = (err as { code?: string }).code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  if (code === 'UND_ERR_INVALID_ARG') return 'invalid';
  // Both clients (upstream/h1, upstream/h2) call onConnect only once a connected socket or session
  // is about to carry the request: before it, nothing reached the backend. An unprocessed
  // stream was not acted on either: retried like a connect failure, whatever the method.
  if (!connected || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ECONNREFUSED' || isUnprocessed(err)) return 'connect';
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
