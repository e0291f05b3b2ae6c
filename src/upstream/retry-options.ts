/**
 * The retry policy of an upstream (issue 5), whose defaults keep the simple design.
 *
 * A backend that cannot be reached is retried after a jittered, growing pause, up to
 * `retriesPerBackend` times; then it is marked down and the request moves on to the next one, up
 * to `maxBackends` per request. A failure after the request was sent moves it on at once and
 * marks nothing down (issue 9); the same backend is retried only when it is the only one. A
 * retry happens only when it is safe:
 * - `connect`: the request never reached the backend, so any method may be retried;
 * - `reset` before any response byte, `timeout` and a listed status: the backend may have acted
 *   on it, so only idempotent methods (RFC 9110 section 9.2.2) or requests carrying an
 *   Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), whose body, if any, is still
 *   held in our replay buffer;
 * - protocol errors and anything after the response began are never retried.
 * `retryOn` and `retryStatuses` say which of those outcomes are retried at all.
 */
export interface RetryOptions {
  /** Retries on the same backend after a failed attempt (a sent one: only when it is the only backend). Default 3. */
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
