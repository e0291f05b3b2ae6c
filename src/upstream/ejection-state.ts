import type { Timer } from '../clock.js';

/**
 * A backend's outlier state, kept and changed by health/outlier.ts. It lives on the backend, so it
 * survives reloads with it, and so in this layer: health/ sits above upstream/ and not below it.
 * A pending return timer calls back into the detector that set it.
 */
export class EjectionState {
  /** Consecutive failed attempts, and their kind ('' once the kinds were mixed). */
  failures = 0;
  failureKind = '';
  /** Consecutive 5xx responses or failed attempts. */
  errors5xx = 0;
  /** Ejections counted into the next one's length; one is forgiven per base time spent back in. */
  ejections = 0;
  /** When the backend last returned from an ejection (clock ms). */
  returnedAtMs = 0;
  /** The pending return; null when not ejected by us. */
  timer: Timer | null = null;
  /** The current run of failures includes a connect failure. */
  connectInRun = false;
  /** The current (or last) ejection's failures included connect failures: the backend was unreachable. */
  ejectedUnreachable = false;
}
