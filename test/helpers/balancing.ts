import type { Balancer, BalancerOptions, PickContext } from '../../src/balancer/types.js';
import { SlowStart } from '../../src/balancer/slow-start.js';
import type { Clock, Random, Timer } from '../../src/clock.js';
import { Backend, parseBackendUrl, type PoolOptions } from '../../src/upstream/backend.js';

// Unit-test backends: their pools are only constructed, never connected; close them after.
const poolOptions: PoolOptions = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };

/** Deterministic Random (mulberry32). */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    },
  };
}

/** A clock that moves only when told. */
export class FakeClock implements Clock {
  nowMs = 1_000_000;
  now(): number {
    return this.nowMs;
  }
  advance(ms: number): void {
    this.nowMs += ms;
  }
  setTimeout(): Timer {
    throw new Error('FakeClock has no timers');
  }
  clearTimeout(): void {}
}

/** Backends named by their base path (`http://127.0.0.1:PORT/name`), with optional weights. */
export function makeBackends(created: Backend[], names: readonly string[], weights: readonly number[] = [], maxInFlight?: number): Backend[] {
  return names.map((name, i) => {
    const backend = new Backend(parseBackendUrl(`http://127.0.0.1:${10_001 + i}/${name}`), weights[i] ?? 1, poolOptions, maxInFlight);
    created.push(backend);
    return backend;
  });
}

export function options(clock: Clock = new FakeClock(), random: Random = seededRandom(1), slowStartMs = 0, ewmaDecayMs = 10_000): BalancerOptions {
  return { clock, random, slowStart: new SlowStart(clock, slowStartMs), ewmaDecayMs };
}

/** Wires the backends' state changes to the balancer, as an Upstream does. */
export function wire(balancer: Balancer, backends: readonly Backend[], clock?: Clock): void {
  for (const backend of backends) {
    backend.onStateChange = (b) => {
      if (clock !== undefined && b.downReasons === 0) b.upSinceMs = clock.now();
      balancer.onBackendState?.(b);
    };
  }
}

export function name(backend: Backend | undefined): string {
  return backend === undefined ? '(none)' : backend.basePath.slice(1);
}

export const anyClient: PickContext = { clientIp: '127.0.0.1' };

/** Names of `count` picks, each pick's attempt started and ended at once. */
export function picks(balancer: Balancer, count: number, ctx: PickContext = anyClient): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(name(balancer.pick(ctx)));
  return out;
}

/** How many of `count` picks went to each backend name. */
export function shares(balancer: Balancer, count: number, ctx: PickContext = anyClient): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < count; i++) {
    const n = name(balancer.pick(ctx));
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  return counts;
}

export async function closeAll(created: Backend[]): Promise<void> {
  await Promise.all(created.splice(0).map((b) => b.close()));
}
