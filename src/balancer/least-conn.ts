import type { Backend } from '../upstream/backend.js';
import { isEligible } from './eligibility.js';
import type { SlowStart } from './slow-start.js';
import type { Balancer, BalancerOptions, PickContext } from './types.js';

/**
 * Least connections, weighted: the backend with the lowest (in-flight + 1) / weight, ties going
 * to the one picked longest ago (so equal loads rotate round-robin). Backends that are up sit in
 * an indexed binary min-heap, so a pick and an in-flight update cost O(log n); a backend that
 * goes down leaves the heap and re-enters when it comes back up (onBackendState).
 * The "+ 1" makes weights count even at zero load, so a slow-starting backend is not flooded.
 */
export class LeastConn implements Balancer {
  private readonly backends: readonly Backend[];
  private readonly slowStart: SlowStart;
  private readonly position: Map<Backend, number>;
  /** Heap of backend positions, ordered by `less`. */
  private readonly heap: Int32Array;
  private size = 0;
  /** Backend position -> index in `heap`, or -1 when it is not in the heap. */
  private readonly heapIndex: Int32Array;
  private readonly load: Float64Array;
  private readonly lastPicked: Float64Array;
  private picks = 0;
  /** Scratch stack for the search past ineligible backends (excluded, or at max in-flight). */
  private readonly stack: Int32Array;
  /** Positions whose weight is still ramping up: their keys are refreshed at each pick. */
  private readonly ramping: number[] = [];

  constructor(backends: readonly Backend[], options: BalancerOptions) {
    const count = backends.length;
    this.backends = backends;
    this.slowStart = options.slowStart;
    this.position = new Map(backends.map((backend, i) => [backend, i]));
    this.heap = new Int32Array(count);
    this.heapIndex = new Int32Array(count).fill(-1);
    this.load = new Float64Array(count);
    this.lastPicked = new Float64Array(count);
    this.stack = new Int32Array(count + 2);
    for (let i = 0; i < count; i++) if ((backends[i] as Backend).up) this.insert(i);
  }

  pick(ctx: PickContext): Backend | undefined {
    if (this.ramping.length > 0) this.refreshRamping();
    if (this.size === 0) return undefined;
    const heap = this.heap;
    const backends = this.backends;
    let best = heap[0] as number;
    if (!isEligible(backends[best] as Backend, ctx)) {
      // Best-first search: an eligible node beats its whole subtree, so only the children of
      // ineligible nodes are looked at.
      best = -1;
      const stack = this.stack;
      let top = 0;
      stack[top++] = 0;
      while (top > 0) {
        const at = stack[--top] as number;
        const candidate = heap[at] as number;
        if (isEligible(backends[candidate] as Backend, ctx)) {
          if (best === -1 || this.less(candidate, best)) best = candidate;
          continue;
        }
        const left = 2 * at + 1;
        if (left < this.size) stack[top++] = left;
        if (left + 1 < this.size) stack[top++] = left + 1;
      }
      if (best === -1) return undefined;
    }
    this.lastPicked[best] = ++this.picks;
    this.siftDown(this.heapIndex[best] as number);
    return backends[best];
  }

  onAttemptStart(backend: Backend): void {
    this.update(backend);
  }

  onAttemptEnd(backend: Backend): void {
    this.update(backend);
  }

  onBackendState(backend: Backend): void {
    const i = this.position.get(backend);
    if (i === undefined) return;
    const inHeap = (this.heapIndex[i] as number) !== -1;
    if (backend.up && !inHeap) {
      this.insert(i);
      if (this.slowStart.ramping(backend)) this.ramping.push(i);
    } else if (!backend.up && inHeap) {
      this.remove(i);
    }
  }

  private update(backend: Backend): void {
    const i = this.position.get(backend);
    if (i === undefined || (this.heapIndex[i] as number) === -1) return;
    this.load[i] = this.loadOf(i);
    const at = this.heapIndex[i] as number;
    this.siftUp(at);
    this.siftDown(this.heapIndex[i] as number);
  }

  private refreshRamping(): void {
    const ramping = this.ramping;
    for (let k = ramping.length - 1; k >= 0; k--) {
      const i = ramping[k] as number;
      const backend = this.backends[i] as Backend;
      this.update(backend);
      if (!this.slowStart.ramping(backend)) {
        ramping[k] = ramping[ramping.length - 1] as number;
        ramping.pop();
      }
    }
  }

  private loadOf(i: number): number {
    const backend = this.backends[i] as Backend;
    return (backend.inFlight + 1) / this.slowStart.weight(backend);
  }

  private less(a: number, b: number): boolean {
    const la = this.load[a] as number;
    const lb = this.load[b] as number;
    return la < lb || (la === lb && (this.lastPicked[a] as number) < (this.lastPicked[b] as number));
  }

  private insert(i: number): void {
    this.load[i] = this.loadOf(i);
    const at = this.size++;
    this.heap[at] = i;
    this.heapIndex[i] = at;
    this.siftUp(at);
  }

  private remove(i: number): void {
    const at = this.heapIndex[i] as number;
    const last = --this.size;
    this.heapIndex[i] = -1;
    if (at === last) return;
    const moved = this.heap[last] as number;
    this.heap[at] = moved;
    this.heapIndex[moved] = at;
    this.siftUp(at);
    this.siftDown(this.heapIndex[moved] as number);
  }

  private siftUp(at: number): void {
    const heap = this.heap;
    const item = heap[at] as number;
    while (at > 0) {
      const parentAt = (at - 1) >> 1;
      const parent = heap[parentAt] as number;
      if (!this.less(item, parent)) break;
      heap[at] = parent;
      this.heapIndex[parent] = at;
      at = parentAt;
    }
    heap[at] = item;
    this.heapIndex[item] = at;
  }

  private siftDown(at: number): void {
    const heap = this.heap;
    const size = this.size;
    const item = heap[at] as number;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && this.less(heap[child + 1] as number, heap[child] as number)) child++;
      const smaller = heap[child] as number;
      if (!this.less(smaller, item)) break;
      heap[at] = smaller;
      this.heapIndex[smaller] = at;
      at = child;
    }
    heap[at] = item;
    this.heapIndex[item] = at;
  }
}
