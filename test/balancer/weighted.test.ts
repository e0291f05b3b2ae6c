import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { balancers } from '../../src/balancer/registry.js';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { SmoothWeighted } from '../../src/balancer/weighted.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { anyClient, closeAll, FakeClock, makeBackends, options, picks, shares, wire } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

describe('SmoothWeighted (weighted-round-robin)', () => {
  test('weights 5,1,1 give a a b a c a a, the nginx sequence, and repeat it', () => {
    const wrr = new SmoothWeighted(makeBackends(created, ['a', 'b', 'c'], [5, 1, 1]), options());
    const sequence = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];
    assert.deepEqual(picks(wrr, 14), [...sequence, ...sequence]);
  });

  test('equal weights rotate like round-robin', () => {
    const wrr = new SmoothWeighted(makeBackends(created, ['a', 'b', 'c']), options());
    assert.deepEqual(picks(wrr, 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('proportions follow the weights exactly over whole cycles (3:2:1 over 6000 picks)', () => {
    const wrr = new SmoothWeighted(makeBackends(created, ['a', 'b', 'c'], [3, 2, 1]), options());
    const counts = shares(wrr, 6000);
    assert.deepEqual([counts.get('a'), counts.get('b'), counts.get('c')], [3000, 2000, 1000]);
  });

  test('never sends a burst: with weights 10,1 the light backend is never picked twice in a row', () => {
    const wrr = new SmoothWeighted(makeBackends(created, ['a', 'b'], [10, 1]), options());
    const seq = picks(wrr, 110);
    for (let i = 1; i < seq.length; i++) assert.ok(!(seq[i] === 'b' && seq[i - 1] === 'b'));
    assert.equal(seq.filter((n) => n === 'b').length, 10);
  });

  test('a failure lowers the effective weight, which climbs back by one per round', () => {
    const [a, b] = makeBackends(created, ['a', 'b'], [4, 4]) as [Backend, Backend];
    const wrr = new SmoothWeighted([a, b], options());
    wrr.onAttemptEnd(a, true);
    wrr.onAttemptEnd(a, true); // effective weight of a: 0
    const first = picks(wrr, 8);
    assert.ok(first.filter((n) => n === 'a').length < 4, first.join(' '));
    // After recovery the shares are even again.
    picks(wrr, 40);
    const counts = shares(wrr, 80);
    assert.equal(counts.get('a'), 40);
  });

  test('skips down and excluded backends, and all ineligible gives undefined', () => {
    const [a, b, c] = makeBackends(created, ['a', 'b', 'c'], [5, 1, 1]) as [Backend, Backend, Backend];
    const wrr = new SmoothWeighted([a, b, c], options());
    a.markDown(DownReason.healthCheck);
    assert.deepEqual(picks(wrr, 4), ['b', 'c', 'b', 'c']);
    assert.deepEqual(picks(wrr, 2, { clientIp: '1.1.1.1', exclude: new Set([b]) }), ['c', 'c']);
    c.markDown(DownReason.draining);
    assert.equal(wrr.pick({ clientIp: '1.1.1.1', exclude: new Set([b]) }), undefined);
  });

  test('a backend at its max in-flight is skipped until an attempt ends', () => {
    const [a, b] = makeBackends(created, ['a', 'b'], [1, 1], 1) as [Backend, Backend];
    const wrr = new SmoothWeighted([a, b], options());
    a.inFlight = 1;
    assert.deepEqual(picks(wrr, 3), ['b', 'b', 'b']);
    a.inFlight = 0;
    assert.ok(picks(wrr, 2).includes('a'));
  });

  test('slow start: a backend that comes back takes a growing share over the window', () => {
    const clock = new FakeClock();
    const backends = makeBackends(created, ['a', 'b'], [1, 1]);
    const [a] = backends as [Backend];
    const wrr = new SmoothWeighted(backends, options(clock, undefined, 10_000));
    wire(wrr, backends, clock);
    a.markDown(DownReason.healthCheck);
    a.markUp(DownReason.healthCheck);
    const early = shares(wrr, 1000).get('a') ?? 0;
    clock.advance(5000);
    const middle = shares(wrr, 1000).get('a') ?? 0;
    clock.advance(5000);
    const full = shares(wrr, 1000).get('a') ?? 0;
    // Weight 0.1 vs 1: about 9%; 0.55 vs 1: about 35%; then 50%.
    assert.ok(early > 60 && early < 120, `early ${early}`);
    assert.ok(middle > 300 && middle < 400, `middle ${middle}`);
    assert.equal(full, 500);
  });
});

describe('the round-robin registry entry', () => {
  test('equal weights take the O(1) counter; other weights are smooth weighted', () => {
    assert.ok(balancers['round-robin']?.(makeBackends(created, ['a', 'b']), options()) instanceof RoundRobin);
    const weighted = balancers['round-robin']?.(makeBackends(created, ['a', 'b'], [2, 1]), options());
    assert.ok(weighted instanceof SmoothWeighted);
    assert.deepEqual(picks(weighted, 3), ['a', 'b', 'a']);
    assert.ok(balancers['round-robin']?.(makeBackends(created, ['a', 'b']), options(undefined, undefined, 1000)) instanceof SmoothWeighted);
  });

  test('every registered balancer returns undefined when nothing is eligible', () => {
    for (const [algorithm, factory] of Object.entries(balancers)) {
      const backends = makeBackends(created, ['a', 'b', 'c']);
      const balancer = factory(backends, options());
      wire(balancer, backends);
      for (const backend of backends) backend.markDown(DownReason.disabled);
      assert.equal(balancer.pick(anyClient), undefined, algorithm);
      (backends[1] as Backend).markUp(DownReason.disabled);
      assert.equal(balancer.pick(anyClient), backends[1], algorithm);
      assert.equal(balancer.pick({ clientIp: '127.0.0.1', exclude: new Set([backends[1] as Backend]) }), undefined, algorithm);
    }
  });
});
