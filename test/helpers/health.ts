import { Writable } from 'node:stream';
import type { Clock, Timer } from '../../src/clock.js';
import { ActiveHealthChecker, type ActiveHealthOptions } from '../../src/health/active.js';
import { createLogger } from '../../src/log.js';
import { Backend, parseBackendUrl } from '../../src/upstream/backend.js';
import type { Random } from '../../src/clock.js';

const poolOptions = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };

/** A pino logger whose JSON lines land in `logs`. */
export function recordingLogger(): { logger: ReturnType<typeof createLogger>; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ format: 'json', level: 'info', destination }), logs };
}

export interface ManualTimer extends Timer {
  readonly fn: () => void;
  readonly ms: number;
  cleared: boolean;
}

/** A clock whose time moves only when told and whose timers fire only when fired by hand. */
export class ManualClock implements Clock {
  nowMs = 1_000_000;
  readonly timers: ManualTimer[] = [];
  now(): number {
    return this.nowMs;
  }
  setTimeout(fn: () => void, ms: number): Timer {
    const timer: ManualTimer = { fn, ms, cleared: false };
    this.timers.push(timer);
    return timer;
  }
  clearTimeout(timer: Timer): void {
    (timer as ManualTimer).cleared = true;
  }
  /** Timers set and neither cleared nor fired. */
  pending(): ManualTimer[] {
    return this.timers.filter((t) => !t.cleared);
  }
  /** Fires `timer` as if its time had come. */
  fire(timer: ManualTimer): void {
    timer.cleared = true;
    timer.fn();
  }
}

/** A backend for `url` (closed by `close`), and a checker over the given backends. */
export function makeBackend(url: string, created: Backend[]): Backend {
  const backend = new Backend(parseBackendUrl(url), 1, poolOptions);
  created.push(backend);
  return backend;
}

export function makeChecker(
  backends: readonly Backend[],
  options: Partial<ActiveHealthOptions>,
  deps: { clock?: Clock; random?: Random } = {},
): { checker: ActiveHealthChecker; logs: Record<string, unknown>[] } {
  const { logger, logs } = recordingLogger();
  return { checker: new ActiveHealthChecker(backends, options, logger, deps), logs };
}

/** Messages of the log entries, in order. */
export function messages(logs: readonly Record<string, unknown>[]): string[] {
  return logs.map((e) => String(e['msg']));
}
