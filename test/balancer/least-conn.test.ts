import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { LeastConn } from '../../src/balancer/least-conn.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { closeAll, FakeClock, makeBackends, name, options, picks, seededRandom, wire } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

/** Starts an attempt as the proxy does: in-flight count up, then the hook. */
function start(lc: LeastConn, backend: Backend): void {
  backend.inFlight++;
  lc.onAttemptStart(backend);
}

function end(lc: LeastConn, backend: Backend): void {
  backend.inFlight--;
  lc.onAttemptEnd(backend);
}

function leastConn(names: string[], weights: number[] = [], maxInFlight?: number): { lc: LeastConn; backends: Backend[] } {
  const backends = makeBackends(created, names, weights, maxInFlight);
  const lc = new LeastConn(backends, options());
  wire(lc, backends);
  return { lc, backends };
}

describe('LeastConn', () => {
  test('equal loads rotate round-robin', () => {
    const { lc } = leastConn(['a', 'b', 'c']);
    assert.deepEqual(picks(lc, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('picks the backend with the fewest in flight, and follows the counts as they change', () => {
    const { lc, backends } = leastConn(['a', 'b', 'c']);
    const [a, b, c] = backends as [Backend, Backend, Backend];
    start(lc, a);
    start(lc, a);
    start(lc, b);
    assert.equal(name(lc.pick({ clientIp: 'x' })), 'c');
    start(lc, c);
    start(lc, c);
    assert.equal(name(lc.pick({ clientIp: 'x' })), 'b');
    end(lc, a);
    end(lc, a);
    assert.equal(name(lc.pick({ clientIp: 'x' })), 'a');
  });

  test('always matches a linear scan under 20,000 random starts, ends and state changes', () => {
    const random = seededRandom(42);
    const { lc, backends } = leastConn(
      Array.from({ length: 37 }, (_, i) => `b${i}`),
      Array.from({ length: 37 }, (_, i) => 1 + (i % 4)),
    );
    for (let step = 0; step < 20_000; step++) {
      const roll = random.next();
      const backend = backends[Math.floor(random.next() * backends.length)] as Backend;
      if (roll < 0.05) {
        if (backend.downReasons === 0) backend.markDown(DownReason.healthCheck);
        else backend.markUp(DownReason.healthCheck);
        continue;
      }
      if (roll < 0.45 && backend.inFlight > 0) {
        end(lc, backend);
        continue;
      }
      const picked = lc.pick({ clientIp: 'x' });
      let min = Number.POSITIVE_INFINITY;
      for (const candidate of backends) if (candidate.available) min = Math.min(min, (candidate.inFlight + 1) / candidate.weight);
      if (picked === undefined) {
        assert.equal(min, Number.POSITIVE_INFINITY, `step ${step}: nothing picked`);
        continue;
      }
      assert.ok(picked.available, `step ${step}: picked a down backend`);
      assert.equal((picked.inFlight + 1) / picked.weight, min, `step ${step}: not the least loaded`);
      start(lc, picked);
    }
  });

  test('weights: a backend of weight 3 carries three times the in-flight of one of weight 1', () => {
    const { lc, backends } = leastConn(['a', 'b'], [3, 1]);
    for (let i = 0; i < 400; i++) start(lc, lc.pick({ clientIp: 'x' }) as Backend);
    const [a, b] = backends as [Backend, Backend];
    assert.ok(Math.abs(a.inFlight - 300) <= 1 && Math.abs(b.inFlight - 100) <= 1, `${a.inFlight} / ${b.inFlight}`);
  });

  test('a backend that goes down leaves the heap and comes back with its live count', () => {
    const { lc, backends } = leastConn(['a', 'b', 'c']);
    const [a, b] = backends as [Backend, Backend, Backend];
    a.markDown(DownReason.draining);
    const seen = picks(lc, 4);
    assert.deepEqual([...seen].sort(), ['b', 'b', 'c', 'c']);
    assert.notEqual(seen[0], seen[1]);
    start(lc, b);
    a.markUp(DownReason.draining);
    assert.equal(name(lc.pick({ clientIp: 'x' })), 'a');
  });

  test('skips excluded backends and backends at max in-flight, finding the least loaded of the rest', () => {
    const { lc, backends } = leastConn(['a', 'b', 'c', 'd'], [], 2);
    const [a, b, c, d] = backends as [Backend, Backend, Backend, Backend];
    start(lc, b);
    start(lc, c);
    start(lc, c);
    start(lc, d);
    // a (0) excluded, c at its limit: b and d tie at 1.
    const picked = lc.pick({ clientIp: 'x', exclude: new Set([a]) });
    assert.ok(picked === b || picked === d);
    assert.equal(lc.pick({ clientIp: 'x', exclude: new Set([a, b, d]) }), undefined);
  });

  test('slow start: a backend that just came up gets a small share even at zero load', () => {
    const clock = new FakeClock();
    const backends = makeBackends(created, ['a', 'b']);
    const lc = new LeastConn(backends, options(clock, undefined, 10_000));
    wire(lc, backends, clock);
    const [a, b] = backends as [Backend, Backend];
    a.markDown(DownReason.healthCheck);
    a.markUp(DownReason.healthCheck);
    for (let i = 0; i < 110; i++) start(lc, lc.pick({ clientIp: 'x' }) as Backend);
    // At 10% of its weight, a's load is (n + 1) / 0.1 against b's (m + 1) / 1: a takes one pick
    // in eleven, neither none (left out) nor half (no slow start).
    assert.deepEqual([a.inFlight, b.inFlight], [10, 100]);
    clock.advance(10_000);
    for (let i = 0; i < 100; i++) start(lc, lc.pick({ clientIp: 'x' }) as Backend);
    assert.ok(Math.abs(a.inFlight - b.inFlight) <= 1, `a ${a.inFlight}, b ${b.inFlight}`);
  });
});
