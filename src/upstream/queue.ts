import type { Balancer, PickContext } from '../balancer/types.js';
import type { Clock, Timer } from '../clock.js';
import type { Backend } from './backend.js';

/**
 * Requests waiting for a backend slot, like HAProxy's `maxqueue` / `timeout queue`: when every
 * backend that is up is at its in-flight limit, a request waits here (first come, first served)
 * instead of getting 503 at once; a full queue or a wait past the timeout still gets 503.
 */

export interface QueueOptions {
  /** Requests that may wait at once; 0 turns the queue off. */
  readonly size: number;
  /** Longest wait for a slot. */
  readonly timeoutMs: number;
}

/** A queued request: the pick context, its timeout timer, and where a slot or the timeout goes. */
export interface QueueWaiter extends PickContext {
  /** Set while queued; null otherwise. */
  queueTimer: Timer | null;
  onQueueSlot(backend: Backend): void;
  onQueueTimeout(): void;
}

function wakeScheduled(queue: RequestQueue): void {
  queue.wakeNow();
}

export class RequestQueue {
  readonly options: QueueOptions;
  private readonly waiters: QueueWaiter[] = [];
  private readonly balancer: Balancer;
  private readonly backends: readonly Backend[];
  private readonly clock: Clock;
  private wakePending = false;

  constructor(options: QueueOptions, balancer: Balancer, backends: readonly Backend[], clock: Clock) {
    this.options = options;
    this.balancer = balancer;
    this.backends = backends;
    this.clock = clock;
  }

  get length(): number {
    return this.waiters.length;
  }

  /**
   * Queues `waiter` if there is room and some backend is up but at its limit (a slot will free);
   * false means answer 503 now.
   */
  enter(waiter: QueueWaiter): boolean {
    if (this.waiters.length >= this.options.size || !this.someFull()) return false;
    const timer = this.clock.setTimeout(() => this.expire(waiter), this.options.timeoutMs);
    timer.unref?.();
    waiter.queueTimer = timer;
    this.waiters.push(waiter);
    return true;
  }

  /** Takes `waiter` out (its client hung up). */
  leave(waiter: QueueWaiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i !== -1) this.waiters.splice(i, 1);
    if (waiter.queueTimer !== null) this.clock.clearTimeout(waiter.queueTimer);
    waiter.queueTimer = null;
  }

  /**
   * A slot may have freed. Waiters are served on the next tick, not inside the undici callback
   * that ended the attempt; no I/O runs in between, so a newcomer cannot take the slot first.
   */
  wake(): void {
    if (this.wakePending || this.waiters.length === 0) return;
    this.wakePending = true;
    process.nextTick(wakeScheduled, this);
  }

  /** Serves waiters in order while the balancer finds a backend for the first. */
  wakeNow(): void {
    this.wakePending = false;
    const waiters = this.waiters;
    while (waiters.length > 0) {
      const head = waiters[0] as QueueWaiter;
      const backend = this.balancer.pick(head);
      if (backend === undefined) return;
      waiters.shift();
      if (head.queueTimer !== null) this.clock.clearTimeout(head.queueTimer);
      head.queueTimer = null;
      head.onQueueSlot(backend);
    }
  }

  private expire(waiter: QueueWaiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i === -1) return;
    this.waiters.splice(i, 1);
    waiter.queueTimer = null;
    waiter.onQueueTimeout();
  }

  private someFull(): boolean {
    const backends = this.backends;
    for (let i = 0; i < backends.length; i++) {
      const backend = backends[i] as Backend;
      if (backend.up && backend.inFlight >= backend.maxInFlight) return true;
    }
    return false;
  }
}
