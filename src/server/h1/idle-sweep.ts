/** What the sweep asks of a connection. */
export interface SweptConnection {
  /** The sweep's tick `tick` passed: the connection checks its timeout. */
  onSweep(tick: number): void;
}

function run(sweep: IdleSweep): void {
  sweep.run();
}

/**
 * One timer for the header and keep-alive timeouts of every connection on a listener's own
 * path, instead of a socket timer each (issue 12): node:net refreshes a socket's timer at every
 * read and write, 7-8 % of the CPU of a small GET, and it costs ~170 bytes per connection.
 * A connection notes the tick of its last activity; the sweep runs every quarter of the shortest
 * timeout, so a timeout fires between its length and 1.25 times it.
 */
export class IdleSweep {
  /** Advanced by each run; connections compare it to the tick of their last activity. */
  tick = 0;
  /** Ticks after an activity by which each timeout has surely passed; 0: no timeout. */
  readonly headersTicks: number;
  readonly keepAliveTicks: number;
  private readonly tickMs: number;
  private readonly open: ReadonlySet<SweptConnection>;
  private timer: NodeJS.Timeout | null = null;

  constructor(open: ReadonlySet<SweptConnection>, headersTimeoutMs: number, keepAliveTimeoutMs: number) {
    this.open = open;
    const shortest = Math.min(headersTimeoutMs > 0 ? headersTimeoutMs : Infinity, keepAliveTimeoutMs > 0 ? keepAliveTimeoutMs : Infinity);
    this.tickMs = shortest === Infinity ? 0 : Math.max(1, Math.floor(shortest / 4));
    // An activity comes anywhere within a tick: one more tick makes the whole timeout pass.
    this.headersTicks = headersTimeoutMs > 0 ? Math.ceil(headersTimeoutMs / this.tickMs) + 1 : 0;
    this.keepAliveTicks = keepAliveTimeoutMs > 0 ? Math.ceil(keepAliveTimeoutMs / this.tickMs) + 1 : 0;
  }

  /** A connection arrived: the sweep runs while there are any (it stops by itself after the last). */
  start(): void {
    if (this.timer !== null || this.tickMs === 0) return;
    this.timer = setInterval(run, this.tickMs, this);
    this.timer.unref();
  }

  run(): void {
    this.tick++;
    if (this.open.size === 0) {
      clearInterval(this.timer as NodeJS.Timeout);
      this.timer = null;
      return;
    }
    for (const conn of this.open) conn.onSweep(this.tick);
  }
}
