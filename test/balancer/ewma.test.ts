import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Ewma } from '../../src/balancer/ewma.js';
import type { Backend } from '../../src/upstream/backend.js';
import { closeAll, FakeClock, makeBackends, options, seededRandom, shares } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

describe('Ewma (peak-EWMA with P2C)', () => {
  test('jumps to a slower sample at once and moves towards faster ones with time', () => {
    const clock = new FakeClock();
    const [a] = makeBackends(created, ['a', 'b']) as [Backend, Backend];
    const ewma = new Ewma([a], options(clock, seededRandom(1), 0, 10_000));
    ewma.onAttemptEnd(a, false, 50);
    assert.equal(ewma.costMs(a), 50);
    ewma.onAttemptEnd(a, false, 500);
    assert.equal(ewma.costMs(a), 500);
    clock.advance(10_000);
    ewma.onAttemptEnd(a, false, 10);
    // 500 decays by e^-1 over one decay time, then blends with the new sample.
    const expected = 500 * Math.exp(-1) + 10 * (1 - Math.exp(-1));
    assert.ok(Math.abs(ewma.costMs(a) - expected) < 1e-9);
    ewma.onAttemptEnd(a, true, 3);
    assert.equal(ewma.costMs(a), 1000, 'a failure counts as at least 1 s');
  });

  test('prefers the fast backend, and a once-slow backend is probed again and recovers', () => {
    const clock = new FakeClock();
    const backends = makeBackends(created, ['fast', 'slow']);
    const [fast, slow] = backends as [Backend, Backend];
    const ewma = new Ewma(backends, options(clock, seededRandom(2), 0, 10_000));
    ewma.onAttemptEnd(fast, false, 10);
    ewma.onAttemptEnd(slow, false, 1000);
    // Every pick goes to the fast one: never picking at all would not pass.
    assert.deepEqual([...shares(ewma, 1000)], [['fast', 1000]]);
    // Time passes; only the fast backend gets traffic and samples, the slow one's cost decays.
    let probedAfterMs = -1;
    for (let second = 1; second <= 120 && probedAfterMs < 0; second++) {
      clock.advance(1000);
      const picked = ewma.pick({ clientIp: 'x' }) as Backend;
      if (picked === slow) probedAfterMs = second * 1000;
      else ewma.onAttemptEnd(fast, false, 10);
    }
    // 1000 ms decays below 10 ms after about ln(100) decay times: 46 s.
    assert.ok(probedAfterMs >= 40_000 && probedAfterMs <= 50_000, `probed after ${probedAfterMs} ms`);
    // It answers fast now: its share comes back to about half.
    for (let i = 0; i < 50; i++) {
      clock.advance(200);
      ewma.onAttemptEnd(slow, false, 10);
      ewma.onAttemptEnd(fast, false, 10);
    }
    const counts = shares(ewma, 10_000);
    assert.ok(Math.abs((counts.get('slow') ?? 0) - 5000) < 300, JSON.stringify([...counts]));
  });

  test('with equal costs, in-flight counts decide', () => {
    const backends = makeBackends(created, ['a', 'b']);
    const [a] = backends as [Backend, Backend];
    const ewma = new Ewma(backends, options(new FakeClock(), seededRandom(3)));
    a.inFlight = 3;
    assert.deepEqual([...shares(ewma, 500)], [['b', 500]]);
    // Back to equal loads, both are picked again.
    a.inFlight = 0;
    const even = shares(ewma, 1000);
    assert.ok(Math.abs((even.get('a') ?? 0) - 500) < 100 && Math.abs((even.get('b') ?? 0) - 500) < 100, JSON.stringify([...even]));
  });
});
