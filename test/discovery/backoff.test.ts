import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff } from '../../src/discovery/backoff.js';
import { ManualClock } from '../helpers/health.js';

const fixed = (value: number) => ({ next: () => value });

test('delays double from initial to max, jittered down to half', () => {
  const clock = new ManualClock();
  const top = new Backoff(clock, fixed(0.999999), { initial: 500, max: 30_000 });
  assert.deepEqual([0, 1, 2, 5, 6, 7, 100].map((n) => Math.round(top.delayMs(n))), [500, 1000, 2000, 16_000, 30_000, 30_000, 30_000]);
  const bottom = new Backoff(clock, fixed(0), { initial: 500, max: 30_000 });
  assert.deepEqual([0, 1, 6, 100].map((n) => bottom.delayMs(n)), [250, 500, 15_000, 15_000]);
});

test('wait() resolves when its timer fires; cancel() ends the current wait and every later one', async () => {
  const clock = new ManualClock();
  const backoff = new Backoff(clock, fixed(0.5), { initial: 100, max: 1000 });
  const first = backoff.wait(1);
  const [timer] = clock.pending();
  assert.equal(timer?.ms, 150);
  clock.fire(timer as NonNullable<typeof timer>);
  await first;
  const second = backoff.wait(3);
  assert.equal(clock.pending().length, 1);
  backoff.cancel();
  await second;
  assert.equal(clock.pending().length, 0, 'the timer is cleared');
  await backoff.wait(0);
  assert.equal(clock.pending().length, 0, 'no timer after cancel');
});
