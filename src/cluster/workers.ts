import cluster, { type Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../errors.js';
import type { Logger } from '../log.js';
import { isMessage, type Answers, type ListenerAddress, type Question, type ToPrimary, type ToWorker } from './messages.js';

/** One worker's place: a replacement takes the same index, and the same backoff. */
export interface Slot {
  readonly index: number;
  worker: Worker | null;
  ready: boolean;
  /** Sent its init message: from then on it gets every broadcast, in order after the init. */
  inited: boolean;
  startedAtMs: number;
  startedAt: Date;
  backoffMs: number;
  restartTimer: NodeJS.Timeout | null;
  /** Digest of the config it serves. */
  digest: string;
  listeners: readonly ListenerAddress[];
}

export interface WorkerSetHooks {
  /** The init message of a worker that has just started. */
  init(slot: Slot): ToWorker;
  report(slot: Slot, message: Extract<ToPrimary, { type: 'swy:report' }>): void;
  /** A replacement is serving. */
  replaced(slot: Slot): void;
  /** A worker has gone (before any replacement). */
  exited(slot: Slot): void;
}

/** Restart backoff: 100 ms, doubling to 10 s; back to 100 ms after a worker served this long. */
const firstBackoffMs = 100;
const maxBackoffMs = 10_000;
const stableAfterMs = 10_000;

const workerMain = fileURLToPath(new URL('./worker-main.js', import.meta.url));

interface Pending {
  readonly waiting: Set<Slot>;
  readonly answers: Map<Slot, ToPrimary>;
  readonly done: () => void;
}

/**
 * The worker processes of a primary: forks them, hands each its init message, replaces one that
 * dies (with backoff, logged), asks them all a question with a bounded wait, and drains them.
 */
export class WorkerSet {
  readonly slots: Slot[];
  private readonly logger: Logger;
  private readonly hooks: WorkerSetHooks;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopping = false;
  /** Set while the first workers start: the first failure fails the start. */
  private starting: { fail(err: Error): void; ready(): void } | null = null;

  constructor(count: number, logger: Logger, hooks: WorkerSetHooks) {
    this.logger = logger;
    this.hooks = hooks;
    this.slots = Array.from({ length: count }, (_, index) => ({ index, worker: null, ready: false, inited: false, startedAtMs: 0, startedAt: new Date(), backoffMs: firstBackoffMs, restartTimer: null, digest: '', listeners: [] }));
    // Kernel scheduling: each worker accepts on the shared socket itself (docs/workers.md).
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    cluster.setupPrimary({ exec: workerMain, args: [], serialization: 'advanced' });
  }

  /** Forks every worker; resolves once all serve, rejects (and stops them) if one fails to start. */
  async start(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.starting = { fail: reject, ready: () => this.slots.every((s) => s.ready) && resolve() };
    });
    for (const slot of this.slots) this.fork(slot);
    try {
      await started;
    } catch (err) {
      await this.stop(0);
      throw err;
    } finally {
      this.starting = null;
    }
  }

  private fork(slot: Slot): void {
    slot.restartTimer = null;
    const worker = cluster.fork({ SWITCHYARD_WORKER: String(slot.index + 1) });
    slot.worker = worker;
    slot.ready = false;
    slot.inited = false;
    slot.startedAtMs = performance.now();
    slot.startedAt = new Date();
    worker.on('message', (message: unknown) => {
      if (isMessage<ToPrimary>(message)) this.onMessage(slot, worker, message);
    });
    worker.on('exit', (code: number | null, signal: string | null) => this.onExit(slot, worker, code, signal));
  }

  private onMessage(slot: Slot, worker: Worker, message: ToPrimary): void {
    if (slot.worker !== worker) return;
    if (message.type === 'swy:hello') {
      slot.inited = true;
      worker.send(this.hooks.init(slot));
    }
    else if (message.type === 'swy:ready') {
      slot.ready = true;
      slot.digest = message.digest;
      slot.listeners = message.listeners;
      if (this.starting !== null) return this.starting.ready();
      this.logger.info({ worker: slot.index + 1, pid: worker.process.pid }, `worker ${slot.index + 1} serving again (pid ${worker.process.pid})`);
      this.hooks.replaced(slot);
    } else if (message.type === 'swy:failed') {
      const err = message.usage ? new ConfigError(message.error) : new Error(message.error);
      if (this.starting !== null) this.starting.fail(err);
      else this.logger.error({ worker: slot.index + 1, error: message.error }, `worker ${slot.index + 1} failed to start: ${message.error}`);
    } else if (message.type === 'swy:report') this.hooks.report(slot, message);
    else if (message.type === 'swy:answer' || message.type === 'swy:applied') {
      const pending = this.pending.get(message.id);
      if (pending === undefined || !pending.waiting.delete(slot)) return;
      pending.answers.set(slot, message);
      if (pending.waiting.size === 0) pending.done();
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = null;
    slot.ready = false;
    slot.inited = false;
    for (const pending of this.pending.values()) if (pending.waiting.delete(slot) && pending.waiting.size === 0) pending.done();
    this.hooks.exited(slot);
    if (this.stopping) return;
    const how = signal === null ? `code ${code}` : signal;
    if (this.starting !== null) return this.starting.fail(new Error(`worker ${slot.index + 1} exited during start (${how})`));
    if (performance.now() - slot.startedAtMs >= stableAfterMs) slot.backoffMs = firstBackoffMs;
    const delayMs = slot.backoffMs;
    slot.backoffMs = Math.min(maxBackoffMs, slot.backoffMs * 2);
    this.logger.warn({ worker: slot.index + 1, pid: worker.process.pid, code, signal, restartInMs: delayMs }, `worker ${slot.index + 1} (pid ${worker.process.pid}) exited (${how}): starting another in ${delayMs}ms`);
    slot.restartTimer = setTimeout(() => this.fork(slot), delayMs);
  }

  /**
   * Sends `message` to every worker that has its init message, serving or still starting: a state
   * or a discovered set that changed after the init reaches it too.
   */
  broadcast(message: ToWorker): void {
    for (const slot of this.slots) if (slot.inited && slot.worker?.isConnected() === true) slot.worker.send(message);
  }

  /**
   * Sends `make(id)` to `slots` (default: every worker that serves) and resolves with each one's
   * reply; a worker that has not replied within `timeoutMs`, or exits, is left out.
   */
  request(make: (id: number) => ToWorker, timeoutMs: number, slots: readonly Slot[] = this.slots.filter((s) => s.ready)): Promise<Map<Slot, ToPrimary>> {
    const id = this.nextId++;
    const waiting = new Set(slots.filter((s) => s.worker?.isConnected() === true));
    const answers = new Map<Slot, ToPrimary>();
    if (waiting.size === 0) return Promise.resolve(answers);
    return new Promise((resolve) => {
      const timer = setTimeout(() => pending.done(), timeoutMs);
      const pending: Pending = {
        waiting,
        answers,
        done: () => {
          clearTimeout(timer);
          this.pending.delete(id);
          resolve(answers);
        },
      };
      this.pending.set(id, pending);
      const message = make(id);
      for (const slot of waiting) slot.worker?.send(message);
    });
  }

  /** Every serving worker's answer to `question`, within `timeoutMs`. */
  async ask<Q extends Question>(question: Q, timeoutMs: number): Promise<Answers[Q][]> {
    const answers = await this.request((id) => ({ type: 'swy:ask', id, question }), timeoutMs);
    return [...answers.values()].map((m) => (m as Extract<ToPrimary, { type: 'swy:answer' }>).value as Answers[Q]);
  }

  /** Drains every worker within `graceMs` (then kills what is left) and resolves once all have exited. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    const exits: Promise<unknown>[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer !== null) clearTimeout(slot.restartTimer);
      const worker = slot.worker;
      if (worker === null) continue;
      exits.push(new Promise((resolve) => worker.once('exit', resolve)));
      if (worker.isConnected()) worker.send({ type: 'swy:stop', graceMs } satisfies ToWorker);
      else worker.process.kill('SIGTERM');
      // Past the grace period (and a margin to close pools), a worker that still runs is killed.
      setTimeout(() => worker.process.exitCode === null && worker.process.signalCode === null && worker.process.kill('SIGKILL'), graceMs + 5000).unref();
    }
    await Promise.all(exits);
  }
}
