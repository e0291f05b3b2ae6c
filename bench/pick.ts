/**
 * Micro-benchmark of Balancer.pick (issue 3): ns per pick, with the attempt hooks the proxy calls,
 * and heap bytes allocated per pick, for each algorithm at 10, 100 and 1000 backends.
 * Run with `npm run bench:pick` (needs --expose-gc, which the script passes).
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { isEligible } from '../src/balancer/eligibility.js';
import { balancers } from '../src/balancer/registry.js';
import type { Balancer, BalancerFactory, PickContext } from '../src/balancer/types.js';
import { SlowStart } from '../src/balancer/slow-start.js';
import { StickySessions, stickySettings } from '../src/balancer/sticky.js';
import { systemClock, systemRandom } from '../src/clock.js';
import { Backend, parseBackendUrl } from '../src/upstream/backend.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:pick does)');

/** The textbook least-conn: a linear scan, for comparison with the heap. */
class LinearLeastConn implements Balancer {
  private readonly backends: readonly Backend[];
  private next = 0;
  constructor(backends: readonly Backend[]) {
    this.backends = backends;
  }
  pick(ctx: PickContext): Backend | undefined {
    const backends = this.backends;
    const count = backends.length;
    let best: Backend | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let k = 0; k < count; k++) {
      const backend = backends[(this.next + k) % count] as Backend;
      if (!isEligible(backend, ctx)) continue;
      const load = (backend.inFlight + 1) / backend.weight;
      if (load < bestLoad) {
        best = backend;
        bestLoad = load;
      }
    }
    this.next = (this.next + 1) % count;
    return best;
  }
}

const pool = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };
const options = { clock: systemClock, random: systemRandom, slowStart: new SlowStart(systemClock, 0), ewmaDecayMs: 10_000 };
const keys = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
const latencies = Float64Array.from({ length: 64 }, (_, i) => 1 + (i % 7));

type Make = (backends: Backend[]) => Balancer;
/** Name, factory, and whether the backends get weights 1, 2, 3, 1, 2, 3... instead of all 1. */
const algorithms: [string, Make, boolean][] = [
  ...Object.entries(balancers).map(([name, factory]): [string, Make, boolean] => [name, (b) => factory(b, options), false]),
  ['round-robin, weights 1-3 (smooth WRR)', (b) => (balancers['round-robin'] as BalancerFactory)(b, options), true],
  ['least-conn, weights 1-3', (b) => (balancers['least-conn'] as BalancerFactory)(b, options), true],
  ['random, weights 1-3', (b) => (balancers['random'] as BalancerFactory)(b, options), true],
  ['least-conn (linear scan, for comparison)', (b) => new LinearLeastConn(b), false],
  ['sticky + round-robin', (b) => new StickySessions((balancers['round-robin'] as BalancerFactory)(b, options), b, stickySettings({ secret: 'benchmark secret' })), false],
];

/** Start times of garbage collections; only those inside a measured loop are counted. */
const gcStarts: number[] = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcStarts.push(entry.startTime);
}).observe({ entryTypes: ['gc'] });

interface Result {
  readonly nsPerPick: number;
  readonly bytesPerPick: number;
  readonly gcs: number;
}

/** Picks `iterations` times, keeping about `backends / 2` attempts in flight like a busy proxy. */
function loop(balancer: Balancer, iterations: number, window: (Backend | undefined)[]): void {
  const ctx = { clientIp: '10.0.0.1', hashKey: '', exclude: undefined, stickyId: undefined as string | undefined };
  const start = balancer.onAttemptStart;
  const end = balancer.onAttemptEnd;
  const size = window.length;
  for (let i = 0; i < iterations; i++) {
    ctx.hashKey = keys[i & 1023] as string;
    const backend = balancer.pick(ctx) as Backend;
    backend.inFlight++;
    if (start !== undefined) balancer.onAttemptStart?.(backend);
    const slot = i % size;
    const old = window[slot];
    if (old !== undefined) {
      old.inFlight--;
      if (end !== undefined) balancer.onAttemptEnd?.(old, false, latencies[i & 63] as number);
    }
    window[slot] = backend;
  }
}

async function measure(make: Make, count: number, weighted: boolean): Promise<Result> {
  const backends = Array.from({ length: count }, (_, i) => new Backend(parseBackendUrl(`http://10.0.${i >> 8}.${i & 255}:8080`), weighted ? 1 + (i % 3) : 1, pool));
  const balancer = make(backends);
  const window: (Backend | undefined)[] = new Array<Backend | undefined>(Math.max(1, count >> 1)).fill(undefined);
  loop(balancer, 20_000, window); // warm up and let the JIT settle
  const calibrateStart = process.hrtime.bigint();
  loop(balancer, 20_000, window);
  const perPickNs = Number(process.hrtime.bigint() - calibrateStart) / 20_000;
  const iterations = Math.max(20_000, Math.min(5_000_000, Math.round(3e8 / perPickNs)));
  gc?.();
  await new Promise((resolve) => setImmediate(resolve));
  const heapBefore = process.memoryUsage().heapUsed;
  const loopStartMs = performance.now();
  const started = process.hrtime.bigint();
  loop(balancer, iterations, window);
  const elapsed = Number(process.hrtime.bigint() - started);
  const heapAfter = process.memoryUsage().heapUsed;
  const loopEndMs = performance.now();
  await new Promise((resolve) => setTimeout(resolve, 20));
  const gcs = gcStarts.filter((at) => at >= loopStartMs && at <= loopEndMs).length;
  await Promise.all(backends.map((b) => b.close()));
  return { nsPerPick: elapsed / iterations, bytesPerPick: Math.max(0, heapAfter - heapBefore) / iterations, gcs };
}

const sizes = [10, 100, 1000];
const rows: string[] = [];
rows.push(`| algorithm | ${sizes.map((n) => `ns/pick @${n}`).join(' | ')} | bytes/pick (max) | GCs in measured loops |`);
rows.push(`|---|${sizes.map(() => '---:').join('|')}|---:|---:|`);
for (const [name, make, weighted] of algorithms) {
  const results: Result[] = [];
  for (const count of sizes) results.push(await measure(make, count, weighted));
  const bytes = Math.max(...results.map((r) => r.bytesPerPick));
  const gcs = results.reduce((sum, r) => sum + r.gcs, 0);
  rows.push(`| ${name} | ${results.map((r) => r.nsPerPick.toFixed(1)).join(' | ')} | ${bytes.toFixed(3)} | ${gcs} |`);
}
process.stdout.write(`Balancer.pick with onAttemptStart/onAttemptEnd, node ${process.version}\n\n${rows.join('\n')}\n`);
