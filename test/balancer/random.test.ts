import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { balancers } from '../../src/balancer/registry.js';
import { PowerOfTwo, RandomChoice } from '../../src/balancer/p2c.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { closeAll, makeBackends, options, seededRandom, shares } from '../helpers/balancing.js';

const created: Backend[] = [];
after(() => closeAll(created));

/** Asserts each share is within `tolerance` (a fraction of all picks) of the expected fraction. */
function assertShares(counts: Map<string, number>, total: number, expected: Record<string, number>, tolerance: number): void {
  for (const [key, fraction] of Object.entries(expected)) {
    const got = (counts.get(key) ?? 0) / total;
    assert.ok(Math.abs(got - fraction) <= tolerance, `${key}: ${got.toFixed(4)} vs ${fraction} (±${tolerance})`);
  }
}

describe('RandomChoice', () => {
  test('equal weights: uniform within 1% over 60,000 picks', () => {
    const random = new RandomChoice(makeBackends(created, ['a', 'b', 'c']), options(undefined, seededRandom(7)), true);
    assertShares(shares(random, 60_000), 60_000, { a: 1 / 3, b: 1 / 3, c: 1 / 3 }, 0.01);
  });

  test('weights 3,1: 75% and 25% within 1% over 60,000 picks', () => {
    const backends = makeBackends(created, ['a', 'b'], [3, 1]);
    const random = balancers['random']?.(backends, options(undefined, seededRandom(8)));
    assert.ok(random !== undefined);
    assertShares(shares(random, 60_000), 60_000, { a: 0.75, b: 0.25 }, 0.01);
  });

  test('never picks a down or excluded backend', () => {
    const backends = makeBackends(created, ['a', 'b', 'c', 'd']);
    const [a, b] = backends as [Backend, Backend];
    const random = new RandomChoice(backends, options(undefined, seededRandom(9)), true);
    a.markDown(DownReason.healthCheck);
    const counts = shares(random, 3000, { clientIp: 'x', exclude: new Set([b]) });
    assert.deepEqual([...counts.keys()].sort(), ['c', 'd']);
  });
});

describe('PowerOfTwo', () => {
  test('equal loads: uniform within 1.5% over 60,000 picks', () => {
    const p2c = new PowerOfTwo(makeBackends(created, ['a', 'b', 'c', 'd']), options(undefined, seededRandom(11)));
    assertShares(shares(p2c, 60_000), 60_000, { a: 0.25, b: 0.25, c: 0.25, d: 0.25 }, 0.015);
  });

  test('the most loaded backend is never chosen; the next one only against itself', () => {
    const backends = makeBackends(created, ['a', 'b', 'c']);
    const [, b, c] = backends as [Backend, Backend, Backend];
    c.inFlight = 10;
    b.inFlight = 5;
    const p2c = new PowerOfTwo(backends, options(undefined, seededRandom(12)));
    const counts = shares(p2c, 30_000);
    assert.equal(counts.get('c'), undefined);
    // b wins only when drawn with c: 1/3 of pairs.
    assertShares(counts, 30_000, { a: 2 / 3, b: 1 / 3 }, 0.015);
  });

  test('with one eligible backend it is always that one', () => {
    const backends = makeBackends(created, ['a', 'b', 'c']);
    const p2c = new PowerOfTwo(backends, options(undefined, seededRandom(13)));
    (backends[0] as Backend).markDown(DownReason.healthCheck);
    const counts = shares(p2c, 100, { clientIp: 'x', exclude: new Set([backends[1] as Backend]) });
    assert.deepEqual([...counts.entries()], [['c', 100]]);
  });
});
