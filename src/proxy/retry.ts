import type { Random } from '../clock.js';
import type { Config } from '../config/schema.js';
import { defaultRetryOptions, type RetryOptions, type RetryOutcome } from '../upstream/retry-options.js';

/** The retry rules of the attempt loop; the policy's options live with the upstream (upstream/retry-options.ts). */

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
