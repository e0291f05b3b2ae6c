import type { Random } from '../clock.js';
import type { Config } from '../config/schema.js';

/**
 * The retry policy of an upstream (issue 5), whose defaults keep the simple design.
 *
 * A failed attempt is retried on the same backend after a jittered, growing pause, up to
 * `retriesPerBackend` times; then that backend is marked down and the request moves on to the
 * next one, up to `maxBackends` per request. A retry happens only when it is safe:
 * - `connect`: the request never reached the backend, so any method may be retried;
 * - `reset` before any response byte, `timeout` and a listed status: the backend may have acted
 *   on it, so only idempotent methods (RFC 9110 section 9.2.2) or requests carrying an
 *   Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), whose body, if any, is still
 *   held in our replay buffer;
 * - protocol errors and anything after the response began are never retried.
 * `retryOn` and `retryStatuses` say which of those outcomes are retried at all.
 */
export interface RetryOptions {
  /** Retries on the same backend after a failed attempt. Default 3. */
  readonly retriesPerBackend: number;
  /** Pause before retrying the same backend. Default 10 ms. */
  readonly retryDelayMs: number;
  /**
   * Above retryDelayMs: the pause doubles per retry up to this cap, with full jitter. Default 0:
   * every pause is retryDelayMs exactly, as in the simple design.
   */
  readonly maxRetryDelayMs: number;
  /** Backends one request may try. Default 3. */
  readonly maxBackends: number;
  /** Request bodies up to this size are kept so an idempotent request can be replayed. Default 64 KiB. */
  readonly replayBufferBytes: number;
  /** Failed attempts that are retried. Default `connect` and `reset`. */
  readonly retryOn: readonly RetryOutcome[];
  /** Backend response statuses that are retried when a retry is possible. Default none. */
  readonly retryStatuses: readonly number[];
  /** Time one attempt may wait for response headers; 0: the upstream timeout. Default 0. */
  readonly perTryTimeoutMs: number;
  /** No new attempt starts this long after the request arrived; 0: no limit. Default 0. */
  readonly tryDurationMs: number;
  /** Retries in flight per upstream are capped at max(budgetMinRetries, budgetPercent% of active requests). */
  readonly budgetMinRetries: number;
  /** See budgetMinRetries. Default 20. */
  readonly budgetPercent: number;
}

/** Failures `retryOn` may list. */
export type RetryOutcome = 'connect' | 'reset' | 'timeout';

export const retryOutcomes: readonly RetryOutcome[] = ['connect', 'reset', 'timeout'];

export const defaultRetryOptions: RetryOptions = {
  retriesPerBackend: 3,
  retryDelayMs: 10,
  maxRetryDelayMs: 0,
  maxBackends: 3,
  replayBufferBytes: 64 * 1024,
  retryOn: ['connect', 'reset'],
  retryStatuses: [],
  perTryTimeoutMs: 0,
  tryDurationMs: 0,
  budgetMinRetries: 3,
  budgetPercent: 20,
};

/** `status`: the backend answered with a status listed in `retryStatuses`. */
export type FailureKind = 'connect' | 'reset' | 'timeout' | 'protocol' | 'status';

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return idempotentMethods.has(method);
}

/** True when the raw header list carries an Idempotency-Key field. */
export function hasIdempotencyKey(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 15 && name.toLowerCase() === 'idempotency-key') return true;
  }
  return false;
}

/**
 * Whether a failed attempt may be tried again. `bodyLeft`: some of the request body was handed
 * to the backend; `replayable`: everything handed out is still in the replay buffer; `retryOn`:
 * the outcomes retried at all; `idempotencyKey`: the request carries an Idempotency-Key.
 */
export function isRetryable(
  kind: FailureKind,
  method: string,
  bodyLeft: boolean,
  replayable: boolean,
  retryOn: readonly RetryOutcome[] = defaultRetryOptions.retryOn,
  idempotencyKey = false,
): boolean {
  if (bodyLeft && !replayable) return false;
  if (kind === 'protocol') return false;
  if (kind !== 'status' && !retryOn.includes(kind)) return false;
  if (kind === 'connect') return true;
  return idempotencyKey || isIdempotent(method);
}

/**
 * Pause before retry number `retry` (1-based) on the same backend: `baseMs` when `maxMs` is not
 * above it, else uniform in [0, min(maxMs, baseMs * 2^(retry-1))] ("full jitter"), so the
 * retries of many clients spread out instead of arriving in waves.
 */
export function backoffDelayMs(retry: number, baseMs: number, maxMs: number, random: Random): number {
  if (maxMs <= baseMs) return baseMs;
  const ceiling = Math.min(maxMs, baseMs * 2 ** (retry - 1));
  return Math.round(random.next() * ceiling);
}

/** RetryOptions from an upstream's validated `retry` config section. */
export function retryOptionsFromConfig(c: Config['upstreams'][string]['retry']): RetryOptions {
  return {
    retriesPerBackend: c.retriesPerBackend,
    retryDelayMs: c.retryDelay,
    maxRetryDelayMs: c.maxRetryDelay,
    maxBackends: c.maxBackends,
    replayBufferBytes: c.replayBuffer,
    retryOn: c.retryOn,
    retryStatuses: c.retryStatuses,
    perTryTimeoutMs: c.perTryTimeout,
    tryDurationMs: c.tryDuration,
    budgetMinRetries: c.budget.minRetries,
    budgetPercent: c.budget.percent,
  };
}
