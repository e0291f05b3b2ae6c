import { systemClock, systemRandom, type Clock, type Random, type Timer } from '../clock.js';
import { publishEjection, publishHealthCheck } from '../events.js';
import type { Logger } from '../log.js';
import { DownReason, type Backend } from '../upstream/backend.js';
import { healthDefaults, type ActiveHealthOptions } from './options.js';
import { httpProbe, tcpProbe } from './probes.js';

export { resolveHealthOptions, type ActiveHealthOptions } from './options.js';
export { httpProbe, tcpProbe } from './probes.js';

export interface HealthCheckerDeps {
  /** Schedules checks and times them. Default: the system clock. */
  readonly clock?: Clock;
  /** Draws each check's jitter. Default: Math.random. */
  readonly random?: Random;
}

/** Per-backend check state: consecutive results and its own schedule. */
interface CheckState {
  readonly backend: Backend;
  passes: number;
  fails: number;
  /** False until the first result, which applies at once whatever rise/fall say. */
  checked: boolean;
  timer: Timer | null;
  running: Promise<void> | null;
}

/**
 * Active health checks, TCP (a connection opens) or HTTP (an expected status and body). Every
 * backend counts as up at start; the first round's results apply at once, so a backend dead at
 * start is down after it. From then on a backend that is up goes down after `fall` consecutive
 * failures and one that is down comes up after `rise` consecutive passes. After the first round
 * each backend keeps its own schedule, `intervalMs` ± jitter. A pass also clears a mark-down made
 * by failed requests (the original simple design's single alive flag).
 */
export class ActiveHealthChecker {
  readonly options: ActiveHealthOptions;
  private readonly states: CheckState[];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly random: Random;
  private roundRunning: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();

  /** `options` may be partial: missing fields take the defaults of its `type` (tcp unless given). */
  constructor(backends: readonly Backend[], options: Partial<ActiveHealthOptions>, logger: Logger, deps: HealthCheckerDeps = {}) {
    this.options = { ...healthDefaults(options.type ?? 'tcp'), ...options };
    this.states = backends.map((backend) => ({ backend, passes: 0, fails: 0, checked: false, timer: null, running: null }));
    this.logger = logger;
    this.clock = deps.clock ?? systemClock;
    this.random = deps.random ?? systemRandom;
  }

  /** Runs the first round now; each backend then follows its own schedule. Resolves when the round is done. */
  start(): Promise<void> {
    return this.round();
  }

  /**
   * Takes over from `previous` (stopped; same options) after a discovery update: backends it
   * checked keep their counts and go on at their interval; the others are checked now.
   * Resolves when those are done.
   */
  continueFrom(previous: ActiveHealthChecker): Promise<void> {
    const before = new Map(previous.states.map((state) => [state.backend, state]));
    const fresh: CheckState[] = [];
    for (const state of this.states) {
      const old = before.get(state.backend);
      if (old === undefined || !old.checked) {
        fresh.push(state);
        continue;
      }
      state.passes = old.passes;
      state.fails = old.fails;
      state.checked = true;
      this.schedule(state);
    }
    return Promise.all(fresh.map((state) => this.check(state))).then(() => undefined);
  }

  /**
   * Checks every backend now, in parallel (joining a check already in flight), and resolves when
   * all are done. Each backend's next scheduled check counts from the end of this one.
   */
  round(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.roundRunning !== null) return this.roundRunning;
    // The round's first and last lines read as the original simple load balancer's did.
    this.logger.info('Starting health check...');
    this.roundRunning = Promise.all(this.states.map((state) => this.check(state))).then(() => {
      this.roundRunning = null;
      if (!this.stopped) this.logger.info('Health check completed');
    });
    return this.roundRunning;
  }

  /** Stops scheduling and aborts checks in flight; resolves once they have settled (sockets closed). */
  stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    const running: Promise<void>[] = [];
    for (const state of this.states) {
      if (state.timer !== null) this.clock.clearTimeout(state.timer);
      state.timer = null;
      if (state.running !== null) running.push(state.running);
    }
    return Promise.all(running).then(() => undefined);
  }

  private check(state: CheckState): Promise<void> {
    if (state.running !== null) return state.running;
    if (state.timer !== null) {
      this.clock.clearTimeout(state.timer);
      state.timer = null;
    }
    state.running = this.probe(state).then(() => {
      state.running = null;
      this.schedule(state);
    });
    return state.running;
  }

  /** Arms the backend's next check: intervalMs × (1 ± jitter), uniformly drawn. */
  private schedule(state: CheckState): void {
    if (this.stopped) return;
    const { intervalMs, jitter } = this.options;
    const delayMs = Math.max(1, Math.round(intervalMs * (1 + jitter * (2 * this.random.next() - 1))));
    const timer = this.clock.setTimeout(() => {
      state.timer = null;
      if (this.stopped) return;
      // A scheduled check of one backend is framed like a round, so the log keeps its shape.
      this.logger.info('Starting health check...');
      void this.check(state).then(() => {
        if (!this.stopped) this.logger.info('Health check completed');
      });
    }, delayMs);
    timer.unref?.();
    state.timer = timer;
  }

  /** One check of one backend: records, logs and publishes the result and applies rise/fall. */
  private async probe(state: CheckState): Promise<void> {
    const { backend } = state;
    const startedMs = this.clock.now();
    let error = '';
    try {
      if (this.options.type === 'http') await httpProbe(backend, this.options, this.abort.signal);
      else await tcpProbe(backend, this.options.timeoutMs, this.abort.signal);
    } catch (err) {
      error = err instanceof Error ? err.message || err.name : String(err);
    }
    if (this.stopped) return;
    const ok = error === '';
    const durationMs = this.clock.now() - startedMs;
    if (ok) {
      state.passes++;
      state.fails = 0;
    } else {
      state.fails++;
      state.passes = 0;
    }
    const first = !state.checked;
    state.checked = true;
    backend.recordHealthCheck({ atMs: startedMs, ok, durationMs, error });
    const shownMs = Math.round(durationMs * 10) / 10;
    if (ok) this.logger.info({ backend: backend.url, up: true, passes: state.passes, durationMs: shownMs }, `${backend.url} [up]`);
    else this.logger.info({ backend: backend.url, up: false, fails: state.fails, durationMs: shownMs, error }, `${backend.url} [down]`);
    publishHealthCheck({ backend, ok, durationMs, error });
    this.apply(state, ok, first);
  }

  private apply(state: CheckState, ok: boolean, first: boolean): void {
    const { backend } = state;
    const healthy = (backend.downReasons & DownReason.healthCheck) === 0;
    if (ok && healthy) {
      backend.markUp(DownReason.failedAttempts);
      // Ejected after connect failures (a crash: refused connections, resets of what was in
      // flight): a passing check shows the backend reachable again, which is what those failures
      // said it was not. After resets or 5xx alone a connecting check proves nothing new.
      if (backend.ejection?.ejectedUnreachable === true) this.uneject(backend);
    } else if (ok && (first || state.passes >= this.options.rise)) {
      backend.markUp(DownReason.healthCheck);
      backend.markUp(DownReason.failedAttempts);
      this.uneject(backend);
      this.logger.warn({ backend: backend.url, healthy: true, passes: state.passes }, `${backend.url} is up: ${state.passes} passing health check(s)`);
    } else if (!ok && healthy && (first || state.fails >= this.options.fall)) {
      backend.markDown(DownReason.healthCheck);
      this.logger.warn({ backend: backend.url, healthy: false, fails: state.fails }, `${backend.url} is down: ${state.fails} failed health check(s)`);
    }
  }

  /**
   * A backend the checks had marked down and now pass returns from ejection too (like Envoy's
   * successful_active_health_check_uneject_host), as does one ejected for connect failures.
   */
  private uneject(backend: Backend): void {
    if ((backend.downReasons & DownReason.ejected) === 0) return;
    backend.markUp(DownReason.ejected);
    this.logger.warn({ backend: backend.url }, `${backend.url} returned from ejection: health check passed`);
    publishEjection({ backend, ejected: false, reason: 'health-check', durationMs: 0 });
  }
}
