import { systemClock, type Clock } from './clock.js';
import type { Config } from './config/schema.js';
import { createSource } from './discovery/create.js';
import { FollowedSource } from './discovery/followed.js';
import type { DiscoveredBackend } from './discovery/source.js';
import { UpstreamDiscovery, type DiscoveryView } from './discovery/upstream-state.js';
import type { Logger } from './log.js';
import type { DiscoveryRole } from './runtime-role.js';
import { withDiscoveredSet, type DiscoveredSets, type Snapshot, type SnapshotDeps } from './snapshot.js';
import type { Backend } from './upstream/backend.js';
import { plural } from './units.js';

/** What discovery needs of the runtime: its snapshot, its reload queue and its drain. */
export interface DiscoveryHost {
  snapshot: Snapshot;
  readonly deps: SnapshotDeps;
  /** Runs `task` after every reload queued before it (reloads and discovery updates run one at a time). */
  enqueue(task: () => Promise<void>): void;
  /** Takes a removed backend out: nothing new, its requests finish, then its pool closes. */
  drainBackend(backend: Backend, graceMs: number): void;
}

/** The discovery states a config needs, before they are committed (a reload that fails drops them). */
export interface DiscoveryPlan {
  readonly next: ReadonlyMap<string, UpstreamDiscovery>;
  readonly created: readonly UpstreamDiscovery[];
  readonly dropped: readonly UpstreamDiscovery[];
}

/** At start, how long the first answer of each source is awaited before listening with what there is. */
export const firstAnswerTimeoutMs = 5000;

/**
 * The discovery sources of the config in force, one per upstream with `discover:` (issue 13),
 * and the partial reloads their updates cause.
 */
export class Discoveries {
  private states = new Map<string, UpstreamDiscovery>();
  private live = false;
  private readonly host: DiscoveryHost;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly role: DiscoveryRole;
  /** A worker's first sets, taken by the first plan. */
  private initial: DiscoveredSets;

  constructor(host: DiscoveryHost, logger: Logger, clock: Clock = systemClock, role: DiscoveryRole = {}) {
    this.host = host;
    this.logger = logger;
    this.clock = clock;
    this.role = role;
    this.initial = role.follow ?? new Map();
  }

  /**
   * The states `config` needs: an upstream whose discover spec is unchanged keeps its source and
   * set; a new or changed spec gets a new source (not started yet) that serves the old set until
   * it answers. Throws a ConfigError when a source cannot be made.
   */
  plan(config: Config): DiscoveryPlan {
    const next = new Map<string, UpstreamDiscovery>();
    const created: UpstreamDiscovery[] = [];
    for (const [name, spec] of Object.entries(config.upstreams)) {
      if (spec.discover === undefined) continue;
      const specKey = JSON.stringify(spec.discover);
      const old = this.states.get(name);
      if (old !== undefined && old.specKey === specKey) {
        next.set(name, old);
        continue;
      }
      const source = this.role.follow === undefined ? createSource(spec.discover, { logger: this.logger, clock: this.clock }) : new FollowedSource(spec.discover);
      const initial = old?.current ?? this.initial.get(name) ?? [];
      const state = new UpstreamDiscovery({ upstream: name, source, specKey, onDue: this.onDue, logger: this.logger, initial, clock: this.clock });
      next.set(name, state);
      created.push(state);
    }
    this.initial = new Map();
    const kept = new Set(next.values());
    return { next, created, dropped: [...this.states.values()].filter((state) => !kept.has(state)) };
  }

  /** The sets a snapshot of `plan` is built with. */
  sets(plan: DiscoveryPlan): DiscoveredSets {
    return new Map([...plan.next].map(([name, state]) => [name, state.current]));
  }

  /** Makes `plan` the one in force: starts its new sources (once live) and stops the dropped ones. */
  commit(plan: DiscoveryPlan): void {
    this.states = new Map(plan.next);
    if (this.live) for (const state of plan.created) state.start();
    for (const state of plan.dropped) void state.stop();
  }

  /**
   * Starts every source and waits (bounded) for their first answers, then builds the snapshot
   * with them; from then on updates are applied as they come.
   */
  async start(build: (sets: DiscoveredSets) => void): Promise<void> {
    this.live = true;
    // A worker has its first sets already; the primary sends the next ones.
    if (this.role.follow !== undefined) return;
    for (const state of this.states.values()) state.start();
    const states = [...this.states.values()];
    const answered = await Promise.all(states.map((state) => state.firstAnswerWithin(firstAnswerTimeoutMs)));
    states.forEach((state, i) => {
      if (!answered[i]) this.logger.warn({ upstream: state.upstream, source: state.source.description }, `discovery for upstream ${state.upstream} (${state.source.description}) has not answered in ${firstAnswerTimeoutMs / 1000}s: starting without its backends`);
      const set = state.take();
      if (set !== null) state.applied(set);
    });
    if (states.length === 0) return;
    build(new Map(states.map((state) => [state.upstream, state.current])));
    for (const state of states) {
      const shown = `discovery for upstream ${state.upstream} (${state.source.description}): ${plural(state.current.length, 'backend')}`;
      this.logger.info({ upstream: state.upstream, source: state.source.description, backends: state.current.map((b) => b.url) }, shown);
    }
  }

  /** Per upstream: its source, state, generation, last update and last error. */
  view(name: string): DiscoveryView | null {
    return this.states.get(name)?.view() ?? null;
  }

  /** Upstreams whose source has not delivered a first set yet (GET /ready waits for them). */
  awaiting(): string[] {
    return [...this.states.values()].filter((state) => state.generation === 0).map((state) => state.upstream);
  }

  all(): Iterable<UpstreamDiscovery> {
    return this.states.values();
  }

  async stop(): Promise<void> {
    this.live = false;
    await Promise.all([...this.states.values()].map((state) => state.stop()));
  }

  private readonly onDue = (state: UpstreamDiscovery): void => {
    if (this.live) this.host.enqueue(async () => this.apply(state));
  };

  /**
   * A worker: applies `set`, which the primary applied to `upstream`, in turn with reloads, then
   * calls `then` in the same task (the worker sets the primary's backend states there).
   */
  follow(upstream: string, set: readonly DiscoveredBackend[], then: () => void): void {
    this.host.enqueue(async () => {
      const state = this.states.get(upstream);
      if (!this.live || state === undefined) return;
      this.applySet(state, set);
      then();
    });
  }

  /** A due set of a source, in turn with reloads. */
  private apply(state: UpstreamDiscovery): void {
    // Stopped (the runtime closed) or replaced by a reload since it was queued: nothing to do.
    if (!this.live || this.states.get(state.upstream) !== state) return;
    const set = state.take();
    if (set === null) return;
    this.applySet(state, set);
  }

  /** A partial reload: one upstream's backends replaced, the rest of the snapshot as it is. */
  private applySet(state: UpstreamDiscovery, set: readonly DiscoveredBackend[]): void {
    const host = this.host;
    const old = host.snapshot;
    let next: Snapshot;
    try {
      next = withDiscoveredSet(old, state.upstream, set, host.deps);
    } catch (err) {
      state.error(err as Error);
      return;
    }
    host.snapshot = next;
    state.applied(set);
    const index = [...next.upstreams.keys()].indexOf(state.upstream);
    // Kept backends go on with their check counts and schedule; new ones are checked at once.
    const previous = old.health[index];
    void previous?.stop();
    if (previous === undefined) void next.health[index]?.start();
    else void next.health[index]?.continueFrom(previous);
    const before = old.upstreams.get(state.upstream)?.backends ?? [];
    const after = new Set(next.upstreams.get(state.upstream)?.backends ?? []);
    const removed = before.filter((b) => !after.has(b));
    const added = [...after].filter((b) => !before.includes(b)).length;
    for (const backend of removed) host.drainBackend(backend, old.config.gracePeriod);
    const terminating = set.filter((b: DiscoveredBackend) => b.terminating).length;
    this.logger.info(
      { upstream: state.upstream, source: state.source.description, generation: state.generation, backends: set.length, added, removed: removed.length, terminating },
      `discovery for upstream ${state.upstream} (${state.source.description}): ${plural(set.length, 'backend')}, ${added} added, ${removed.length} draining${terminating > 0 ? `, ${terminating} terminating` : ''}`,
    );
    this.role.onApplied?.(state.upstream, set);
  }
}
