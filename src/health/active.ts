import net from 'node:net';
import type { Logger } from '../log.js';
import { DownReason, type Backend } from '../upstream/backend.js';

export interface ActiveHealthOptions {
  /** Time between checks of each backend. Default 20 s. */
  readonly intervalMs: number;
  /** A check that has not connected by then fails. Default 2 s. */
  readonly timeoutMs: number;
}

/**
 * Resolves when a TCP connection to the backend opens within `timeoutMs`, rejects otherwise or
 * when `signal` aborts. (Not net.connect's own `signal` option: on Node 20 it leaves one abort
 * listener on the signal per socket, a slow leak for a checker that probes forever.)
 */
export function tcpProbe(backend: Backend, timeoutMs: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('health check aborted'));
      return;
    }
    const socket = net.connect({ host: backend.hostname, port: backend.port });
    const onAbort = (): void => {
      socket.destroy(new Error('health check aborted'));
    };
    const settle = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
    const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      settle();
      socket.destroy();
      resolve();
    });
    socket.once('error', (err) => {
      settle();
      reject(err);
    });
  });
}

/**
 * Periodic TCP health checks: a backend that accepts a connection is up, one that does not is
 * down. Checks once at start, then every `intervalMs`, and logs each result per backend. A pass
 * also clears a mark-down made by failed requests (the simple design's single alive flag).
 */
export class ActiveHealthChecker {
  private readonly backends: readonly Backend[];
  private readonly options: ActiveHealthOptions;
  private readonly logger: Logger;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(backends: readonly Backend[], options: ActiveHealthOptions, logger: Logger) {
    this.backends = backends;
    this.options = options;
    this.logger = logger;
  }

  /** Runs the first round now and schedules the next ones. Resolves when the first round is done. */
  start(): Promise<void> {
    return this.round();
  }

  /** One check of every backend, in parallel; the next scheduled round counts from its end. */
  round(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.running !== null) return this.running;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    // The round's first and last lines read as the original simple load balancer's did.
    this.logger.info('Starting health check...');
    this.running = Promise.all(this.backends.map((backend) => this.check(backend))).then(() => {
      this.running = null;
      if (!this.stopped) this.logger.info('Health check completed');
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.round(), this.options.intervalMs);
        this.timer.unref();
      }
    });
    return this.running;
  }

  private async check(backend: Backend): Promise<void> {
    const startMs = performance.now();
    try {
      await tcpProbe(backend, this.options.timeoutMs, this.abort.signal);
      if (this.stopped) return;
      backend.recordHealth({ atMs: performance.now(), ok: true, durationMs: performance.now() - startMs, error: '' });
      backend.markUp(DownReason.healthCheck);
      backend.markUp(DownReason.failedAttempts);
      this.logger.info({ backend: backend.url, up: true }, `${backend.url} [up]`);
    } catch (err) {
      if (this.stopped) return;
      backend.recordHealth({ atMs: performance.now(), ok: false, durationMs: performance.now() - startMs, error: (err as Error).message });
      backend.markDown(DownReason.healthCheck);
      this.logger.info({ backend: backend.url, up: false, error: (err as Error).message }, `${backend.url} [down]`);
    }
  }

  /** Stops scheduling and aborts probes in flight. */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
