import http2, { type ServerHttp2Stream } from 'node:http2';
import { writeAccessLog } from '../access-log.js';
import { ErrorCodes, httpErrorFor, type ErrorCode } from '../errors.js';
import { attemptChannel, requestChannel, type AttemptEvent, type RequestEvent } from '../events.js';
import type { Backend } from '../upstream/backend.js';
import type { ExchangeState } from './exchange-state.js';
import { declaredBodyLength } from './request-target.js';

/** Completion: the error answers, and what is said about a request and its attempts (events, access log, attempt logs). */

/** Answers with the error's status and a one-line body, or cuts the response if part of it is out. */
export function answerError(x: ExchangeState, code: ErrorCode): void {
  const res = x.res;
  if (res.headersSent || res.destroyed) {
    // Part of the response is out: the client sees it cut, and the log says so.
    const cut = res.headersSent && !x.clientGone;
    cutOff(res);
    finish(x, cut ? 'cut' : 'error');
    return;
  }
  const { status, body } = httpErrorFor(code);
  const text = `${body}\n`;
  // An unread request body would have to be drained to keep the connection: close instead.
  // A request we refused may have framing we do not trust: close after it too.
  // A request without a body is complete once its head is parsed, though Node sets `complete` later.
  const unread = !x.req.complete && declaredBodyLength(x.req) !== 0;
  if (x.ctx.closing || unread || code === ErrorCodes.badRequest) res.shouldKeepAlive = false;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'x-content-type-options': 'nosniff',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
  finish(x, 'error');
}

/**
 * Ends a response part of which is out, so the client sees it incomplete: HTTP/1.1 closes the
 * connection; HTTP/2 resets the stream with INTERNAL_ERROR (RFC 9113 §8.1: a stream reset
 * before its end is an incomplete response), where a bare destroy would send NO_ERROR.
 */
export function cutOff(res: ExchangeState['res']): void {
  const stream = (res as { stream?: ServerHttp2Stream }).stream;
  if (stream !== undefined && !stream.closed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
  res.destroy();
}

/** The request is over for us: releases its budget slots and says what the client got. */
export function finish(x: ExchangeState, outcome: RequestEvent['outcome']): void {
  x.done = true;
  if (x.counted) {
    x.counted = false;
    const budget = x.upstream.retryBudget;
    budget.activeRequests--;
    if (x.holdsRetry) {
      x.holdsRetry = false;
      budget.release();
    }
  }
  if (x.startMs < 0) return;
  const event: RequestEvent = {
    upstream: x.upstream === null ? '' : x.upstream.name,
    backend: x.backend,
    method: x.method,
    host: x.host,
    path: x.target,
    // What the client got: the status line written, 0 when none was.
    status: outcome === 'aborted' || !x.res.headersSent ? 0 : x.res.statusCode,
    durationMs: performance.now() - x.startMs,
    bytesSent: x.bytesSent,
    attempts: x.attempts,
    clientIp: x.clientIp,
    httpVersion: x.req.httpVersion,
    outcome,
  };
  if (requestChannel.hasSubscribers) requestChannel.publish(event);
  if (x.ctx.accessLog !== null) writeAccessLog(x.ctx.accessLog, event);
}

/** Publishes the attempt that just ended, when someone listens. */
export function publishAttempt(x: ExchangeState, outcome: string, retried: boolean): void {
  if (!attemptChannel.hasSubscribers) return;
  const event: AttemptEvent = {
    backend: x.backend as Backend,
    method: x.method,
    outcome,
    status: outcome === 'response' ? x.res.statusCode : 0,
    durationMs: performance.now() - x.attemptStartMs,
    retried,
  };
  attemptChannel.publish(event);
}

export function logAttemptFailure(x: ExchangeState, err: Error, kind: string, action: string): void {
  const logger = x.ctx.logger;
  if (!logger.isLevelEnabled('warn')) return;
  const backend = x.backend as Backend;
  logger.warn(
    { backend: backend.url, method: x.method, path: x.target, kind, error: (err as { code?: string }).code ?? err.message },
    `attempt to ${backend.url} failed (${kind}: ${err.message}); ${action}`,
  );
}

/** A retry the budget refused: at debug level, as an outage would otherwise flood the log. */
export function logBudgetSpent(x: ExchangeState, err: Error, kind: string): void {
  const logger = x.ctx.logger;
  if (!logger.isLevelEnabled('debug')) return;
  const backend = x.backend as Backend;
  logger.debug({ backend: backend.url, method: x.method, path: x.target, kind, error: (err as { code?: string }).code ?? err.message }, `attempt to ${backend.url} failed (${kind}: ${err.message}); ${x.stopWhy}`);
}
