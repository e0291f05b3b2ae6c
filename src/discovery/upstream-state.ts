import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Logger } from '../log.js';
import { parseBackendUrl } from '../upstream/backend.js';
import type { DiscoveredBackend, DiscoverySink, DiscoverySource } from './source.js';

/** Changes within this long of the first one are applied together (a burst of updates is one reload). */
export const discoveryDebounceMs = 100;

/** What the admin API shows of one upstream's discovery. */
export interface DiscoveryView {
  readonly kind: string;
  readonly source: string;
  /** `waiting` (no answer yet), `ok` (the last refresh worked) or `error` (the last one failed: the last good set stays). */
  readonly state: 'waiting' | 'ok' | 'error';
  /** Backend sets applied to the upstream since start (1 after the first answer). */
  readonly generation: number;
  /** When the source last answered (ISO time), and when its set last changed the upstream. */
  readonly lastUpdate: string | null;
  readonly lastChange: string | null;
  readonly lastError: { readonly at: string; readonly message: string } | null;
  readonly updates: number;
  readonly errors: number;
  readonly backends: number;
}

export interface UpstreamDiscoveryOptions {
  readonly upstream: string;
  readonly source: DiscoverySource;
  readonly specKey: string;
  /** A debounced set is due: the runtime applies `take()` and reports back with `applied()`. */
  readonly onDue: (discovery: UpstreamDiscovery) => void;
  readonly logger: Logger;
  /** The set to serve until the source answers (the previous source's, when a reload changed the spec). */
  readonly initial?: readonly DiscoveredBackend[];
  readonly clock?: Clock;
}

/**
 * One upstream's discovery: the sink its source reports to. It normalises each set, drops
 * answers that change nothing, and debounces the rest; when a set is due it calls `onDue`, and
 * the runtime applies `take()` through its reload queue and reports back with `applied()`.
 */
export class UpstreamDiscovery implements DiscoverySink {
  /** The set in force in the upstream. */
  current: readonly DiscoveredBackend[];
  generation = 0;
  updates = 0;
  errors = 0;
  /** True once the source answered (a set or an error). */
  answered = false;
  private ok: boolean | null = null;
  private pending: readonly DiscoveredBackend[] | null = null;
  private timer: Timer | null = null;
  private lastUpdateAt: Date | null = null;
  private lastChangeAt: Date | null = null;
  private lastError: { at: Date; message: string } | null = null;
  private readonly firstAnswer: Promise<void>;
  private resolveFirst: () => void = () => undefined;
  private stopped = false;

  readonly upstream: string;
  readonly source: DiscoverySource;
  /** The discover spec as JSON: a reload with the same spec keeps this source and its set. */
  readonly specKey: string;
  private readonly onDue: (discovery: UpstreamDiscovery) => void;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(options: UpstreamDiscoveryOptions) {
    this.upstream = options.upstream;
    this.source = options.source;
    this.specKey = options.specKey;
    this.onDue = options.onDue;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.current = options.initial ?? [];
    this.firstAnswer = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  start(): void {
    this.source.start(this);
  }

  /** Resolves at the source's first answer, or after `timeoutMs`, whichever is first. */
  async firstAnswerWithin(timeoutMs: number): Promise<boolean> {
    let timer: Timer | undefined;
    const timeout = new Promise<false>((resolve) => (timer = this.clock.setTimeout(() => resolve(false), timeoutMs)));
    const answered = await Promise.race([this.firstAnswer.then(() => true as const), timeout]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    return answered;
  }

  update(backends: readonly DiscoveredBackend[]): void {
    if (this.stopped) return;
    let set: DiscoveredBackend[];
    try {
      set = normalise(backends);
    } catch (err) {
      this.error(err as Error);
      return;
    }
    this.updates++;
    this.lastUpdateAt = new Date();
    if (this.ok === false) this.logger.info({ upstream: this.upstream, source: this.source.description }, `discovery for upstream ${this.upstream} (${this.source.description}) answers again`);
    this.ok = true;
    const first = !this.answered;
    this.answered = true;
    this.resolveFirst();
    if (!first && sameSet(set, this.pending ?? this.current)) return;
    this.pending = set;
    this.timer ??= this.clock.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.onDue(this);
    }, discoveryDebounceMs);
  }

  error(err: Error): void {
    if (this.stopped) return;
    this.errors++;
    const repeated = this.ok === false && this.lastError?.message === err.message;
    this.lastError = { at: new Date(), message: err.message };
    this.ok = false;
    this.answered = true;
    this.resolveFirst();
    // Once per streak of the same error: a source retrying every second would flood the log.
    const line = `discovery for upstream ${this.upstream} (${this.source.description}) failed, keeping the last good set of ${this.current.length}: ${err.message}`;
    if (repeated) this.logger.debug({ upstream: this.upstream, error: err.message }, line);
    else this.logger.warn({ upstream: this.upstream, source: this.source.description, error: err.message }, line);
  }

  /** The set due to be applied, or null; cancels a pending debounce. */
  take(): readonly DiscoveredBackend[] | null {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const set = this.pending;
    this.pending = null;
    // A change and its undoing inside one debounce window: nothing to apply.
    if (set !== null && this.generation > 0 && sameSet(set, this.current)) return null;
    return set;
  }

  /** The runtime applied `set` to the upstream. */
  applied(set: readonly DiscoveredBackend[]): void {
    this.current = set;
    this.generation++;
    this.lastChangeAt = new Date();
  }

  view(): DiscoveryView {
    return {
      kind: this.source.kind,
      source: this.source.description,
      state: this.ok === null ? 'waiting' : this.ok ? 'ok' : 'error',
      generation: this.generation,
      lastUpdate: this.lastUpdateAt?.toISOString() ?? null,
      lastChange: this.lastChangeAt?.toISOString() ?? null,
      lastError: this.lastError === null ? null : { at: this.lastError.at.toISOString(), message: this.lastError.message },
      updates: this.updates,
      errors: this.errors,
      backends: this.current.length,
    };
  }

  /** The source's kind: `dns`, `kubernetes` or `consul`. */
  get kind(): string {
    return this.source.kind;
  }

  /** True while the last refresh failed (the set in force is the last good one). */
  get failing(): boolean {
    return this.ok === false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.take();
    await this.source.stop();
  }
}

/** URLs normalised as backends are, duplicates merged (the first wins), sorted by URL. */
function normalise(backends: readonly DiscoveredBackend[]): DiscoveredBackend[] {
  const byUrl = new Map<string, DiscoveredBackend>();
  for (const backend of backends) {
    const url = parseBackendUrl(backend.url).url;
    if (!(backend.weight > 0) || !Number.isFinite(backend.weight)) throw new Error(`backend ${url}: weight ${backend.weight} is not a positive number`);
    if (!byUrl.has(url)) byUrl.set(url, { url, weight: backend.weight, terminating: backend.terminating });
  }
  return [...byUrl.values()].sort((a, b) => (a.url < b.url ? -1 : a.url > b.url ? 1 : 0));
}

function sameSet(a: readonly DiscoveredBackend[], b: readonly DiscoveredBackend[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as DiscoveredBackend;
    const y = b[i] as DiscoveredBackend;
    if (x.url !== y.url || x.weight !== y.weight || x.terminating !== y.terminating) return false;
  }
  return true;
}
