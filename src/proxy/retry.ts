/**
 * The retry rules of the simple design, with its defects fixed.
 *
 * A failed attempt is retried on the same backend after `retryDelayMs`, up to
 * `retriesPerBackend` times; then that backend is marked down and the request moves on to the
 * next one, up to `maxBackends` per request. A retry happens only when it is safe:
 * - `connect`: the request never reached the backend, so any method may be retried;
 * - `reset` before any response byte: the backend may have acted on it, so only idempotent
 *   methods (RFC 9110 section 9.2.2) whose body, if any, is still held in our replay buffer;
 * - timeouts, protocol errors and anything after the response began are never retried.
 */
export interface RetryOptions {
  /** Retries on the same backend after a failed attempt. Default 3. */
  readonly retriesPerBackend: number;
  /** Pause before retrying the same backend. Default 10 ms. */
  readonly retryDelayMs: number;
  /** Backends one request may try. Default 3. */
  readonly maxBackends: number;
  /** Request bodies up to this size are kept so an idempotent request can be replayed. Default 64 KiB. */
  readonly replayBufferBytes: number;
}

export const defaultRetryOptions: RetryOptions = {
  retriesPerBackend: 3,
  retryDelayMs: 10,
  maxBackends: 3,
  replayBufferBytes: 64 * 1024,
};

export type FailureKind = 'connect' | 'reset' | 'timeout' | 'protocol';

const idempotentMethods = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

export function isIdempotent(method: string): boolean {
  return idempotentMethods.has(method);
}

/**
 * Whether a failed attempt may be tried again. `bodyLeft`: some of the request body was handed
 * to the backend; `replayable`: everything handed out is still in the replay buffer.
 */
export function isRetryable(kind: FailureKind, method: string, bodyLeft: boolean, replayable: boolean): boolean {
  if (bodyLeft && !replayable) return false;
  if (kind === 'connect') return true;
  if (kind === 'reset') return isIdempotent(method);
  return false;
}
