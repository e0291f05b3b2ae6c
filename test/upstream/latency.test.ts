import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyHistogram, RecentLatency } from '../../src/upstream/latency.js';

test('quantiles are within a bucket (25%) of the true value', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i);
  const p50 = h.quantile(0.5);
  const p99 = h.quantile(0.99);
  assert.ok(p50 >= 500 && p50 <= 500 * 1.25, `p50 ${p50}`);
  assert.ok(p99 >= 990 && p99 <= 990 * 1.25, `p99 ${p99}`);
  assert.equal(new LatencyHistogram().quantile(0.5), 0);
});

test('recent latency forgets samples older than two windows', () => {
  const recent = new RecentLatency(1000, 0);
  for (let i = 0; i < 100; i++) recent.record(500, 10);
  assert.ok(recent.quantile(0.5, 20) >= 500);
  for (let i = 0; i < 100; i++) recent.record(2, 1500);
  assert.equal(recent.count(1500), 200, 'the previous window still counts');
  assert.ok(recent.quantile(0.25, 1500) <= 2.5 && recent.quantile(0.99, 1500) >= 500);
  assert.equal(recent.count(2100), 100, 'the first window has gone');
  assert.ok(recent.quantile(0.99, 2100) <= 2.5);
  assert.equal(recent.count(10_000), 0, 'idle for longer than two windows: nothing left');
  assert.equal(recent.quantile(0.5, 10_000), 0);
});
