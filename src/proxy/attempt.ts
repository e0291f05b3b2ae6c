import type { Readable } from 'node:stream';
import { ErrorCodes } from '../errors.js';
import { plural } from '../units.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import { answerError, logAttemptFailure, logBudgetSpent, publishAttempt } from './completion.js';
import { retryNext, retryNone, retrySame, type ExchangeState } from './exchange-state.js';
import { bodyIdleMs, grpcTimeoutLeft, grpcTimeoutMs, setGrpcTimeout } from './grpc-deadline.js';
import { classify, errorCodeByKind, isBackendExcused, statusRetryError } from './outcome.js';
import { backoffDelayMs, hasIdempotencyKey, isIdempotent, isRetryable, type FailureKind } from './retry.js';

/**
 * The attempt loop: pick a backend, dispatch one attempt to its pool, classify how it ended, and
 * retry (same backend after a pause, or the next one) within the policy and the budget. The
 * exchange object is the undici handler of its attempts, which are strictly sequential.
 */

/** The first attempt: picks a backend, or waits in the upstream's queue, or answers 503. */
export function pickAndDispatch(x: ExchangeState): void {
  const backend = x.upstream.balancer.pick(x);
  if (backend === undefined) {
    // Every backend that is up may be merely full: wait for a slot if the upstream has a queue.
    const queue = x.upstream.queue;
    if (queue === null || !queue.enter(x)) answerError(x, ErrorCodes.noBackend);
    return;
  }
  x.onQueueSlot(backend);
}

/** Starts the first attempt on `backend` (picked at once or after a wait in the queue). */
export function firstAttempt(x: ExchangeState, backend: Backend): void {
  x.backend = backend;
  x.backendsTried++;
  x.retriesOnBackend = 0;
  dispatchAttempt(x);
}

export function dispatchAttempt(x: ExchangeState): void {
  const backend = x.backend as Backend;
  x.attemptActive = true;
  x.connected = false;
  x.abortAttempt = null;
  x.responseStarted = false;
  x.headFields = null;
  x.lastChunk = null;
  backend.inFlight++;
  backend.requestsTotal++;
  x.attempts++;
  const balancer = x.upstream.balancer;
  if (balancer.onAttemptStart !== undefined) balancer.onAttemptStart(backend);
  x.attemptStartMs = performance.now();
  const perTryTimeoutMs = x.upstream.retry.perTryTimeoutMs;
  const multiplexed = backend.multiplexed;
  // gRPC needs an HTTP/2 backend, and over HTTP/1.1 reading req.headers would build the headers object per request.
  const grpcTimeout = multiplexed ? grpcTimeoutMs(x.req) : -1;
  if (grpcTimeout >= 0) setGrpcTimeout(x.headers as string[], grpcTimeoutLeft(grpcTimeout - (x.attemptStartMs - x.arrivalMs)));
  backend.pool.dispatch(
    {
      path: backend.basePath === '' ? x.target : backend.basePath + x.target,
      method: x.method,
      headers: x.headers,
      // Switchyard's clients take chunks (a body read whole) and any async iterable; undici's types list neither.
      body: (x.wholeBody ?? x.body) as unknown as Readable | null,
      headersTimeout: perTryTimeoutMs > 0 ? Math.min(perTryTimeoutMs, backend.poolOptions.headersTimeoutMs) : null,
      // A gRPC stream within its deadline is not cut by a pause (issue 14).
      bodyTimeout: grpcTimeout >= 0 ? bodyIdleMs(x.req, backend.poolOptions.bodyTimeoutMs, x.arrivalMs, x.attemptStartMs) : backend.poolOptions.bodyTimeoutMs,
      // The attempt loop decides retries.
      idempotent: x.method === 'GET' || x.method === 'HEAD',
      trailersFrom: x.req,
    },
    // The exchange is its own dispatch handler: no object per attempt.
    x,
  );
}

/** `err`: why a failed attempt failed; client hang-ups end attempts as not failed. */
export function endAttempt(x: ExchangeState, failed: boolean, err?: Error): void {
  if (!x.attemptActive) return;
  x.attemptActive = false;
  const backend = x.backend as Backend;
  const upstream = x.upstream;
  backend.inFlight--;
  if (failed) backend.failuresTotal++;
  const balancer = upstream.balancer;
  if (balancer.onAttemptEnd !== undefined) {
    const latencyMs = x.responseStarted && x.latencyMs >= 0 ? x.latencyMs : performance.now() - x.attemptStartMs;
    balancer.onAttemptEnd(backend, failed, latencyMs);
  }
  const outlier = upstream.outlier;
  if (outlier !== null && !x.clientGone && x.internalError === null) {
    if (!failed) {
      if (x.responseStarted) outlier.onAttempt(backend, 'response', x.attemptStatus);
    } else if (err === statusRetryError) {
      // A listed status discarded for a retry: the backend did answer.
      outlier.onAttempt(backend, 'response', x.attemptStatus);
    } else {
      const kind = x.responseStarted ? 'reset' : classify(err as Error, x.connected);
      // One request's repeated failures on one backend after it was sent count once: outlier
      // detection looks for failures across different requests (issue 9, "query of death").
      if (kind !== 'invalid' && kind !== 'status' && (kind === 'connect' || x.retriesOnBackend === 0)) outlier.onAttempt(backend, kind, 0);
    }
  }
  const queue = upstream.queue;
  if (queue !== null && queue.length !== 0 && backend.inFlight < backend.maxInFlight) queue.wake();
}

/** The attempt got its final response head: the backend's latency and status counters. */
export function recordResponse(x: ExchangeState, statusCode: number): void {
  x.responseStarted = true;
  const nowMs = performance.now();
  const latencyMs = nowMs - x.attemptStartMs;
  x.latencyMs = latencyMs;
  x.attemptStatus = statusCode;
  const backend = x.backend as Backend;
  backend.latency.record(latencyMs);
  backend.recentLatency.record(latencyMs, nowMs);
  const statusClass = (statusCode / 100) | 0;
  if (statusClass >= 1 && statusClass <= 5) backend.responsesByClass[statusClass] = (backend.responsesByClass[statusClass] as number) + 1;
}

/**
 * A response head with a status listed in retryStatuses: when a retry will happen, the attempt
 * is aborted (its onError runs the retry) and true is returned; otherwise it is relayed as it is.
 */
export function retryOnStatus(x: ExchangeState, statusCode: number): boolean {
  const retryStatuses = x.upstream.retry.retryStatuses;
  if (retryStatuses.length === 0 || !retryStatuses.includes(statusCode) || x.abortAttempt === null || !mayRetry(x, 'status')) return false;
  const plan = planRetry(x, 'status');
  if (plan === retryNone) return false;
  x.responseStarted = false;
  x.plannedRetry = plan;
  x.abortAttempt(statusRetryError);
  return true;
}

/** An attempt failed before any of its response reached the client: retry it or answer the error. */
export function afterFailedAttempt(x: ExchangeState, err: Error): void {
  if (x.plannedRetry !== retryNone) {
    const plan = x.plannedRetry;
    x.plannedRetry = retryNone;
    runRetry(x, 'status', err, plan);
    return;
  }
  const kind = classify(err, x.connected);
  if (kind === 'invalid' || !mayRetry(x, kind)) {
    publishAttempt(x, kind, false);
    logAttemptFailure(x, err, kind, 'not retried');
    answerError(x, errorCodeByKind[kind]);
    return;
  }
  runRetry(x, kind, err, planRetry(x, kind, isBackendExcused(err)));
}

/** Whether the policy and the request allow retrying this outcome at all. */
function mayRetry(x: ExchangeState, kind: FailureKind): boolean {
  const body = x.body;
  const bodyLeft = body !== null ? body.bodyLeft : x.wholeBody !== null && x.connected;
  const keyed = kind !== 'connect' && !isIdempotent(x.method) && hasIdempotencyKey(x.req.rawHeaders);
  return isRetryable(kind, x.method, bodyLeft, body === null || body.replayable, x.upstream.retry.retryOn, keyed);
}

/**
 * Where a failed attempt goes: the same backend (retrySame), the next (retryNext, nextBackend)
 * or nowhere (retryNone; stopCode and stopWhy say why). Takes a retry-budget slot for a retry.
 * `excused`: the backend refused or shut the connection gracefully, which never marks it down.
 */
function planRetry(x: ExchangeState, kind: FailureKind, excused = false): number {
  const upstream = x.upstream;
  const retry = upstream.retry;
  x.stopCode = errorCodeByKind[kind];
  if (retry.tryDurationMs > 0 && performance.now() - x.arrivalMs >= retry.tryDurationMs) {
    x.stopWhy = `not retried: tryDuration ${retry.tryDurationMs} ms spent`;
    return retryNone;
  }
  const backend = x.backend as Backend;
  const sent = kind !== 'connect';
  let same = x.retriesOnBackend < retry.retriesPerBackend && backend.available;
  // The simple design's "mark down after the retries fail" is for a backend that cannot be
  // reached. A failure after the request was sent may be the request's own doing (a "query of
  // death"): only outlier detection, across different requests, takes the backend out.
  if (!sent && !same && !excused && x.retriesOnBackend >= retry.retriesPerBackend && backend.downReasons === 0) {
    backend.markDown(DownReason.failedAttempts);
    x.ctx.logger.warn({ backend: backend.url }, `${backend.url} [down] after ${plural(retry.retriesPerBackend + 1, 'failed attempt')}`);
  }
  // The budget caps retries that could multiply a backend's work; a connect failure did none.
  const budget = upstream.retryBudget;
  if (x.holdsRetry) {
    x.holdsRetry = false;
    budget.release();
  }
  if (sent) {
    if (!budget.tryAcquire()) {
      x.stopWhy = `not retried: retry budget spent (${budget.activeRetries} retries in flight of ${budget.activeRequests} requests)`;
      return retryNone;
    }
    x.holdsRetry = true;
  }
  // After a failure once sent, the request moves on to another backend (as nginx's
  // proxy_next_upstream does); the same one is tried again only when it is the only one.
  if (same && sent && x.backendsTried > 1) same = false;
  if (same && !sent) return retrySame;
  (x.excluded ??= new Set()).add(backend);
  const next = x.backendsTried >= retry.maxBackends ? undefined : upstream.balancer.pick(x);
  if (next === undefined && same) {
    x.excluded.delete(backend);
    return retrySame;
  }
  if (next === undefined) {
    // 503 when nothing could be reached; a backend that took the request and failed it is a 502.
    if (!sent && (x.backendsTried < retry.maxBackends || !upstream.hasAvailable())) x.stopCode = ErrorCodes.noBackend;
    x.stopWhy = 'giving up on this backend';
    return retryNone;
  }
  x.nextBackend = next;
  return retryNext;
}

/** Carries out a plan of planRetry for an attempt that failed with `kind`. */
function runRetry(x: ExchangeState, kind: FailureKind, err: Error, plan: number): void {
  if (plan === retryNone) {
    publishAttempt(x, kind, false);
    if (x.stopWhy.startsWith('not retried: retry budget')) logBudgetSpent(x, err, kind);
    else logAttemptFailure(x, err, kind, x.stopWhy);
    answerError(x, x.stopCode);
    return;
  }
  publishAttempt(x, kind, true);
  const retry = x.upstream.retry;
  if (plan === retrySame) {
    x.retriesOnBackend++;
    const delayMs = backoffDelayMs(x.retriesOnBackend, retry.retryDelayMs, retry.maxRetryDelayMs, x.upstream.random);
    logAttemptFailure(x, err, kind, `retry ${x.retriesOnBackend} of ${retry.retriesPerBackend} in ${delayMs} ms`);
    x.retryTimer = setTimeout(onRetryTimer, delayMs, x);
    return;
  }
  const backend = x.backend as Backend;
  const next = x.nextBackend as Backend;
  x.nextBackend = null;
  logAttemptFailure(x, err, kind, 'giving up on this backend');
  x.ctx.logger.warn({ from: backend.url, to: next.url }, `moving request ${x.method} ${x.target} from ${backend.url} to ${next.url}`);
  x.backend = next;
  x.backendsTried++;
  x.retriesOnBackend = 0;
  dispatchAttempt(x);
}

function onRetryTimer(x: ExchangeState): void {
  x.retryTimer = null;
  if (x.clientGone) return;
  try {
    dispatchAttempt(x);
  } catch (err) {
    x.internalFailure(err);
  }
}
