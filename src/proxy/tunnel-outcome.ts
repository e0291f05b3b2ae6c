import type { Logger } from '../log.js';
import { plural } from '../units.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import type { Upstream } from '../upstream/upstream.js';
import type { FailureKind } from './retry.js';

/**
 * How a tunnel's handshake attempt counts for passive outlier detection and the mark-down rule,
 * as an ordinary request's attempt does (attempt.ts): any answer, the 101 or a refusal, is a
 * response with its status (a 503 counts only where consecutive5xx is on); a failure before the
 * answer counts by its kind. Client hang-ups are not reported.
 */

export function reportHandshakeAnswer(upstream: Upstream, backend: Backend, status: number): void {
  const outlier = upstream.outlier;
  if (outlier !== null) outlier.onAttempt(backend, 'response', status);
}

export function reportHandshakeFailure(upstream: Upstream, backend: Backend, kind: FailureKind | 'invalid', logger: Logger): void {
  if (kind === 'invalid' || kind === 'status') return;
  const outlier = upstream.outlier;
  if (outlier !== null) outlier.onAttempt(backend, kind, 0);
  // A handshake tries each backend once. With retriesPerBackend 0 that one connect failure has
  // spent an ordinary request's retries on the backend, which then marks it down (planRetry).
  const retries = upstream.retry.retriesPerBackend;
  if (kind === 'connect' && retries === 0 && backend.downReasons === 0) {
    backend.markDown(DownReason.failedAttempts);
    logger.warn({ backend: backend.url }, `${backend.url} [down] after ${plural(retries + 1, 'failed attempt')}`);
  }
}
