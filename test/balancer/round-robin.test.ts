import assert from 'node:assert/strict';
import { after, beforeEach, describe, test } from 'node:test';
import type { PickContext } from '../../src/balancer/types.js';
import { RoundRobin } from '../../src/balancer/round-robin.js';
import { Backend, DownReason, parseBackendUrl, type PoolOptions } from '../../src/upstream/backend.js';
import { Upstream } from '../../src/upstream/upstream.js';
import { defaultRetryOptions } from '../../src/upstream/retry-options.js';

// Unit tests: nothing connects, the pools are only constructed (and closed in `after`).
const poolOptions: PoolOptions = { connectTimeoutMs: 1000, headersTimeoutMs: 1000, bodyTimeoutMs: 1000, keepAliveTimeoutMs: 1000 };
const created: Backend[] = [];

function backends(...names: string[]): Backend[] {
  return names.map((name, i) => {
    const backend = new Backend(parseBackendUrl(`http://127.0.0.1:${10_001 + i}/${name}`), 1, poolOptions);
    created.push(backend);
    return backend;
  });
}

/** Maps a backend back to its name (the base path given in `backends`). */
function name(backend: Backend | undefined): string {
  return backend === undefined ? '(none)' : backend.basePath.slice(1);
}

const ctx: PickContext = { clientIp: '127.0.0.1' };

function picks(balancer: RoundRobin, count: number, context: PickContext = ctx): string[] {
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push(name(balancer.pick(context)));
  return names;
}

after(async () => {
  await Promise.all(created.map((b) => b.close()));
});

describe('RoundRobin', () => {
  let a: Backend, b: Backend, c: Backend;
  let rr: RoundRobin;
  beforeEach(() => {
    [a, b, c] = backends('a', 'b', 'c') as [Backend, Backend, Backend];
    rr = new RoundRobin([a, b, c]);
  });

  test('rotates over every backend in order, starting with the first', () => {
    assert.deepEqual(picks(rr, 7), ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
  });

  test('a single backend is picked every time', () => {
    const [only] = backends('only');
    const single = new RoundRobin([only as Backend]);
    assert.deepEqual(picks(single, 3), ['only', 'only', 'only']);
  });

  test('skips a backend that is down, whatever the reason', () => {
    b.markDown(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 4), ['a', 'c', 'a', 'c']);
    b.markUp(DownReason.healthCheck);
    c.markDown(DownReason.failedAttempts);
    assert.deepEqual(picks(rr, 4), ['a', 'b', 'a', 'b']);
  });

  test('a backend is down while any reason is set', () => {
    b.markDown(DownReason.healthCheck);
    b.markDown(DownReason.failedAttempts);
    b.markUp(DownReason.healthCheck);
    assert.equal(b.available, false);
    assert.deepEqual(picks(rr, 2), ['a', 'c']);
    b.markUp(DownReason.failedAttempts);
    assert.equal(b.available, true);
    assert.deepEqual(picks(rr, 3), ['a', 'b', 'c']);
  });

  test('the rotation continues after the backend that was chosen, not after the one skipped', () => {
    assert.equal(name(rr.pick(ctx)), 'a'); // counter now at b
    b.markDown(DownReason.healthCheck);
    assert.equal(name(rr.pick(ctx)), 'c'); // b skipped, c chosen
    b.markUp(DownReason.healthCheck);
    // Continuing after c means a, not b (which would be "continue after the skipped one").
    assert.deepEqual(picks(rr, 3), ['a', 'b', 'c']);
  });

  test('a backend that comes back takes its turn at its place in the rotation', () => {
    c.markDown(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 3), ['a', 'b', 'a']);
    c.markUp(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 3), ['b', 'c', 'a']);
  });

  test('wraps around when the only live backends are before the counter', () => {
    assert.deepEqual(picks(rr, 2), ['a', 'b']); // counter at c
    b.markDown(DownReason.healthCheck);
    c.markDown(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 2), ['a', 'a']);
  });

  test('one counter is shared by every caller', () => {
    const other: PickContext = { clientIp: '10.0.0.9' };
    assert.equal(name(rr.pick(ctx)), 'a');
    assert.equal(name(rr.pick(other)), 'b');
    assert.equal(name(rr.pick(ctx)), 'c');
  });

  test('skips backends in the exclude set without changing their state', () => {
    const excludeA: PickContext = { clientIp: '127.0.0.1', exclude: new Set([a]) };
    assert.deepEqual(picks(rr, 4, excludeA), ['b', 'c', 'b', 'c']);
    assert.equal(a.available, true);
    // Other requests still get a.
    assert.deepEqual(picks(rr, 3), ['a', 'b', 'c']);
  });

  test('exclude and down combine', () => {
    b.markDown(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 2, { clientIp: '127.0.0.1', exclude: new Set([a]) }), ['c', 'c']);
  });

  test('all down gives undefined, and a backend that comes back is picked again', () => {
    for (const backend of [a, b, c]) backend.markDown(DownReason.healthCheck);
    assert.equal(rr.pick(ctx), undefined);
    assert.equal(rr.pick(ctx), undefined);
    b.markUp(DownReason.healthCheck);
    assert.deepEqual(picks(rr, 2), ['b', 'b']);
  });

  test('every live backend excluded gives undefined', () => {
    c.markDown(DownReason.disabled);
    assert.equal(rr.pick({ clientIp: '127.0.0.1', exclude: new Set([a, b]) }), undefined);
  });

  test('an empty exclude set excludes nothing', () => {
    assert.deepEqual(picks(rr, 3, { clientIp: '127.0.0.1', exclude: new Set() }), ['a', 'b', 'c']);
  });
});

describe('Upstream with round-robin', () => {
  test('builds its balancer over its backends in the order given', async () => {
    const upstream = new Upstream({
      name: 'test',
      backends: ['http://127.0.0.1:10001/x', 'http://127.0.0.1:10002/y', 'http://127.0.0.1:10003/z'].map((url) => ({ url, weight: 1 })),
      balancer: 'round-robin',
      retry: defaultRetryOptions,
      pool: poolOptions,
      forwarding: { preserveHost: true, viaName: 'switchyard', via11: '1.1 switchyard', rewriteLocation: true },
    });
    try {
      const seen: string[] = [];
      for (let i = 0; i < 4; i++) seen.push(name(upstream.balancer.pick(ctx)));
      assert.deepEqual(seen, ['x', 'y', 'z', 'x']);
      assert.equal(upstream.hasAvailable(), true);
      (upstream.backends[1] as Backend).markDown(DownReason.healthCheck);
      seen.length = 0;
      for (let i = 0; i < 4; i++) seen.push(name(upstream.balancer.pick(ctx)));
      assert.deepEqual(seen, ['z', 'x', 'z', 'x']);
      for (const backend of upstream.backends) backend.markDown(DownReason.healthCheck);
      assert.equal(upstream.hasAvailable(), false);
      assert.equal(upstream.balancer.pick(ctx), undefined);
    } finally {
      await upstream.close();
    }
  });
});
