import type { Discoveries } from '../discoveries.js';
import type { Snapshot } from '../snapshot.js';
import type { Backend, DownReason } from '../upstream/backend.js';
import { workerDecidedReasons, type BackendState, type ToWorker } from './messages.js';

/** What the mirror reads of a worker's runtime. */
export interface MirroredRuntime {
  readonly snapshot: Snapshot;
  readonly discoveries: Discoveries;
}

/**
 * A worker's copy of the primary's backend states (down-reason bits) and discovered sets. A set
 * is applied in turn with the worker's reloads, so a state may arrive for a backend the worker
 * has yet to create: the primary's latest bits are kept by URL and given to the backends once
 * the set is applied, however the messages interleave (docs/discovery.md#with-worker-processes).
 */
export class StateMirror {
  /** True while the primary's states are applied, so they are not reported back. */
  applying = false;
  /** Worker-decided bits last reported or received, per backend. */
  readonly synced = new WeakMap<Backend, number>();
  /** The primary's latest bits by discovered upstream and URL, since its last set. */
  private readonly latest = new Map<string, Map<string, number>>();
  private readonly runtime: MirroredRuntime;

  constructor(runtime: MirroredRuntime) {
    this.runtime = runtime;
  }

  /** A set the primary's discovery applied, with its backends' states then. */
  follow(message: Extract<ToWorker, { type: 'swy:discovered' }>): void {
    this.latest.set(message.upstream, new Map());
    this.apply(message.states);
    this.runtime.discoveries.follow(message.upstream, message.set, () => {
      const latest = this.latest.get(message.upstream);
      const backends = this.runtime.snapshot.upstreams.get(message.upstream)?.backends ?? [];
      this.apply(backends.flatMap((b) => (latest?.has(b.url) === true ? [{ upstream: b.upstream, url: b.url, bits: latest.get(b.url) as number }] : [])));
    });
  }

  /** Sets each backend's down reasons to the primary's, through markDown/markUp so balancers hear of it. */
  apply(states: readonly BackendState[]): void {
    this.applying = true;
    try {
      for (const state of states) {
        this.latest.get(state.upstream)?.set(state.url, state.bits);
        const backend = this.runtime.snapshot.upstreams.get(state.upstream)?.backends.find((b) => b.url === state.url);
        if (backend === undefined) continue;
        for (let bit = 1; bit <= 16; bit <<= 1) {
          if ((state.bits & bit) !== 0) backend.markDown(bit as DownReason);
          else backend.markUp(bit as DownReason);
        }
        this.synced.set(backend, state.bits & workerDecidedReasons);
      }
    } finally {
      this.applying = false;
    }
  }
}
