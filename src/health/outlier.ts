import type { Clock, Timer } from '../clock.js';
import { publishEjection } from '../events.js';
import type { Logger } from '../log.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import { EjectionState } from '../upstream/ejection-state.js';

/**
 * Passive outlier detection, after Envoy's: the handler reports every attempt's outcome, and a
 * backend with too many consecutive failures is ejected (DownReason.ejected) for a while.
 */

/** How an attempt ended: a response (with its status) or the failure kind (proxy/retry.ts). */
export type AttemptKind = 'response' | 'connect' | 'timeout' | 'reset' | 'protocol';

export interface OutlierOptions {
  /** Consecutive failed attempts (connect, timeout, reset, protocol) that eject; 0 is off. */
  readonly consecutiveFailures: number;
  /** Consecutive 5xx responses (failed attempts count too) that eject; 0 is off. */
  readonly consecutive5xx: number;
  /** An ejection lasts this times the backend's ejection count. */
  readonly baseEjectionMs: number;
  /** Cap on one ejection's length. */
  readonly maxEjectionMs: number;
  /** Share of the upstream's backends that may be ejected at once; at least one always may. */
  readonly maxEjectionPercent: number;
}

export const defaultOutlierOptions: OutlierOptions = {
  consecutiveFailures: 5,
  consecutive5xx: 0,
  baseEjectionMs: 30_000,
  maxEjectionMs: 300_000,
  maxEjectionPercent: 10,
};

const failureWords: Readonly<Record<string, string>> = {
  connect: 'connect failures',
  timeout: 'timeouts',
  reset: 'resets',
  protocol: 'protocol errors',
  '5xx': '5xx responses',
  failure: 'failures',
};

/** `30s`, `1.5s`, `250ms`. */
function showMs(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10}s` : `${Math.round(ms)}ms`;
}

export class OutlierDetector {
  readonly options: OutlierOptions;
  private readonly backends: readonly Backend[];
  private readonly clock: Clock;
  private readonly logger: Logger | null;

  constructor(backends: readonly Backend[], options: OutlierOptions, clock: Clock, logger: Logger | null) {
    this.backends = backends;
    this.options = options;
    this.clock = clock;
    this.logger = logger;
    for (const backend of backends) backend.ejection ??= new EjectionState();
  }

  /**
   * One attempt ended (client hang-ups are not reported). `status` is read for `response` only.
   * A non-5xx response resets both counters; a 5xx resets the failure counter only.
   */
  onAttempt(backend: Backend, kind: AttemptKind, status: number): void {
    const state = backend.ejection;
    if (state === null) return;
    const options = this.options;
    if (kind === 'response') {
      state.failures = 0;
      state.connectInRun = false;
      if (status < 500 || status > 599) {
        state.errors5xx = 0;
        return;
      }
      state.errors5xx++;
      if (options.consecutive5xx > 0 && state.errors5xx >= options.consecutive5xx) this.eject(backend, state, '5xx', state.errors5xx);
      return;
    }
    state.failureKind = state.failures === 0 || state.failureKind === kind ? kind : 'failure';
    if (state.failures === 0) state.connectInRun = false;
    if (kind === 'connect') state.connectInRun = true;
    state.failures++;
    state.errors5xx++;
    if (options.consecutiveFailures > 0 && state.failures >= options.consecutiveFailures) this.eject(backend, state, state.failureKind, state.failures);
    else if (options.consecutive5xx > 0 && state.errors5xx >= options.consecutive5xx) this.eject(backend, state, '5xx', state.errors5xx);
  }

  /**
   * Whether `candidate` may be ejected: fewer than maxEjectionPercent are (or none is), and
   * another backend stays in rotation; ejecting the last would only turn its failures into 503s.
   */
  private mayEject(candidate: Backend): boolean {
    const backends = this.backends;
    let ejected = 0;
    let othersUp = 0;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      if ((backend.downReasons & DownReason.ejected) !== 0) ejected++;
      else if (backend !== candidate && backend.up) othersUp++;
    }
    if (othersUp === 0) return false;
    return ejected === 0 || ejected < Math.floor((backends.length * this.options.maxEjectionPercent) / 100);
  }

  private eject(backend: Backend, state: EjectionState, reason: string, count: number): void {
    if ((backend.downReasons & DownReason.ejected) !== 0 || !this.mayEject(backend)) return;
    const { baseEjectionMs, maxEjectionMs } = this.options;
    const now = this.clock.now();
    // Envoy lowers the count while a backend stays in; here the decay is applied when it is next ejected.
    if (state.ejections > 0) state.ejections = Math.max(0, state.ejections - Math.floor((now - state.returnedAtMs) / baseEjectionMs));
    state.ejections++;
    const durationMs = Math.min(baseEjectionMs * state.ejections, maxEjectionMs);
    state.failures = 0;
    state.errors5xx = 0;
    state.ejectedUnreachable = state.connectInRun;
    state.connectInRun = false;
    // A health check may have ended the previous ejection early (health/active.ts): its timer goes.
    if (state.timer !== null) this.clock.clearTimeout(state.timer);
    const timer = this.clock.setTimeout(() => this.release(backend, state, timer), durationMs);
    timer.unref?.();
    state.timer = timer;
    backend.markDown(DownReason.ejected);
    this.logger?.warn({ backend: backend.url, reason, count, ejectionMs: durationMs }, `${backend.url} ejected for ${showMs(durationMs)} after ${count} consecutive ${failureWords[reason] ?? reason}`);
    publishEjection({ backend, ejected: true, reason, durationMs });
  }

  private release(backend: Backend, state: EjectionState, timer: Timer): void {
    if (state.timer !== timer) return;
    state.timer = null;
    // Already returned: a passing health check brought it back.
    if ((backend.downReasons & DownReason.ejected) === 0) return;
    state.returnedAtMs = this.clock.now();
    state.failures = 0;
    state.errors5xx = 0;
    backend.markUp(DownReason.ejected);
    // A removed backend is closing anyway: nothing to announce.
    if ((backend.downReasons & DownReason.draining) !== 0) return;
    this.logger?.warn({ backend: backend.url }, `${backend.url} returned from ejection`);
    publishEjection({ backend, ejected: false, reason: '', durationMs: 0 });
  }

  /** Cancels pending returns (the runtime is closing); ejected backends stay ejected. */
  stop(): void {
    for (const backend of this.backends) {
      const state = backend.ejection;
      if (state === null || state.timer === null) continue;
      this.clock.clearTimeout(state.timer);
      state.timer = null;
    }
  }
}
