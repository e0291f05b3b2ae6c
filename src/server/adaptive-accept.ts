import type net from 'node:net';
import { defaultAcceptMode, duplicateHandles, listenBatched, listenOnHandle, type AcceptMode, type BatchListenOptions, type ListeningHandle } from './accept-fds.js';

/**
 * The accept batch, sized to the load when it is made of duplicated descriptors.
 *
 * Every duplicate of the listening socket wakes for every new connection, and each makes one
 * accept4 call per turn: with all 127 extras polled, a turn that finds one connection makes 126
 * calls that fail (EAGAIN). Measured in the bench's scenario (e), a new connection per request:
 * 5.5 failed accept4 per request, a third of all the proxy's system calls (issue 12).
 *
 * So the duplicates are all made at start-up, but only a few are polled. Consecutive turns in
 * which every polled descriptor accepted (a burst: more are waiting) double them, up to the
 * batch. After turns that used at most half of them, half are closed (a duplicate cannot be
 * unpolled otherwise), and the child process that makes duplicates is asked for new unpolled
 * ones, so the next burst finds the whole batch again.
 * SO_REUSEPORT sockets (Node 22.12+) each have their own queue and never wake in vain: those
 * stay as they are.
 */

export interface AdaptiveTuning {
  /** Extra descriptors polled at start and never fewer. */
  readonly minExtras: number;
  /** Consecutive turns in which every polled descriptor accepted before they are doubled. */
  readonly busyTurns: number;
  /** Turns with accepts that used at most half the polled descriptors before half are closed. */
  readonly quietTurns: number;
  /** Shrinks at most this often (each makes a child process for new duplicates). */
  readonly shrinkIntervalMs: number;
}

export const defaultTuning: AdaptiveTuning = { minExtras: 3, busyTurns: 4, quietTurns: 32, shrinkIntervalMs: 1000 };

export class AcceptBatch {
  private readonly server: net.Server;
  private readonly batch: number;
  private readonly onConnection: (socket: net.Socket) => void;
  private readonly tuning: AdaptiveTuning;
  /** Extra listeners polled now. */
  private active: net.Server[] = [];
  /** Duplicated descriptors nothing polls yet. */
  private spares: ListeningHandle[] = [];
  private adaptive = false;
  private closed = false;
  private replenishing = false;
  private turnAccepts = 0;
  private busyTurns = 0;
  private quietTurns = 0;
  private lastShrinkMs = Number.NEGATIVE_INFINITY;

  constructor(server: net.Server, batch: number, onConnection: (socket: net.Socket) => void, tuning: AdaptiveTuning = defaultTuning) {
    this.server = server;
    this.batch = batch;
    this.onConnection = onConnection;
    this.tuning = tuning;
  }

  /** Listens, then makes what it takes to accept up to `batch` connections per turn. */
  async listen(options: BatchListenOptions, mode: AcceptMode = defaultAcceptMode()): Promise<void> {
    if (mode === 'reuse-port' || this.batch <= 1) {
      this.active = await listenBatched(this.server, options, this.batch, this.onConnection, mode);
      return;
    }
    await listenBatched(this.server, options, 1, this.onConnection, 'duplicate');
    this.spares = await duplicateHandles(this.server, this.batch - 1);
    if (this.closed) return this.close();
    this.adaptive = true;
    // Extras hand their connections to the server, so this sees every accept.
    this.server.on('connection', this.onAccept);
    this.grow(this.tuning.minExtras);
  }

  /** Descriptors accepting on the port now (1 + polled extras). */
  get polled(): number {
    return 1 + this.active.length;
  }

  /** Descriptors held for the port (1 + polled extras + spare duplicates). */
  get descriptors(): number {
    return 1 + this.active.length + this.spares.length;
  }

  close(): void {
    this.closed = true;
    this.server.off('connection', this.onAccept);
    for (const listener of this.active) listener.close();
    for (const handle of this.spares) handle.close();
    this.active = [];
    this.spares = [];
  }

  private readonly onAccept = (): void => {
    if (this.turnAccepts++ === 0) setImmediate(this.endTurn);
  };

  /** After the turn's accepts (setImmediate runs after the poll phase): grow, or count a quiet turn. */
  private readonly endTurn = (): void => {
    const accepted = this.turnAccepts;
    this.turnAccepts = 0;
    if (this.closed || !this.adaptive) return;
    const polled = this.polled;
    if (accepted >= polled) {
      this.quietTurns = 0;
      if (++this.busyTurns < this.tuning.busyTurns) return;
      this.busyTurns = 0;
      this.grow(polled);
      return;
    }
    this.busyTurns = 0;
    if (accepted * 2 > polled || this.active.length <= this.tuning.minExtras) {
      this.quietTurns = 0;
      return;
    }
    if (++this.quietTurns < this.tuning.quietTurns) return;
    this.quietTurns = 0;
    const nowMs = performance.now();
    if (nowMs - this.lastShrinkMs < this.tuning.shrinkIntervalMs) return;
    this.lastShrinkMs = nowMs;
    this.shrink();
  };

  private grow(count: number): void {
    for (let i = 0; i < count && this.spares.length > 0; i++) this.active.push(listenOnHandle(this.spares.pop() as ListeningHandle, this.onConnection));
  }

  /** Closes half the polled extras (a closed duplicate cannot be unpolled otherwise), then asks for new spares. */
  private shrink(): void {
    const keep = Math.max(this.tuning.minExtras, this.active.length >> 1);
    for (const listener of this.active.splice(keep)) listener.close();
    this.replenish();
  }

  /** Asks the child process for the duplicates missing from the batch, one request at a time. */
  private replenish(): void {
    const missing = this.batch - this.descriptors;
    if (missing <= 0 || this.replenishing || this.closed) return;
    this.replenishing = true;
    void duplicateHandles(this.server, missing).then((handles) => {
      this.replenishing = false;
      if (this.closed) {
        for (const handle of handles) handle.close();
        return;
      }
      this.spares.push(...handles);
      // Closed meanwhile by another shrink: ask again (none are missing when the child failed).
      if (handles.length > 0) this.replenish();
    });
  }
}
