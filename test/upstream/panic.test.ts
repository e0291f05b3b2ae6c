import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { messages } from '../helpers/health.js';
import { startBackend } from '../helpers/servers.js';

type Lb = Awaited<ReturnType<typeof startConfigured>>;

/** Four live backends a-d behind one upstream. */
async function fourBackends(t: TestContext, upstream: { panicThreshold?: number; balancer?: 'round-robin' | 'least-conn' }) {
  const cleanup = cleanupFor(t);
  const names = ['a', 'b', 'c', 'd'];
  const servers = await Promise.all(names.map((name) => startBackend(name)));
  for (const server of servers) cleanup(() => server.close());
  const lb = await startConfigured({ config: localConfig({ web: { backends: servers.map((s) => s.url), ...upstream } }) });
  cleanup(() => lb.close());
  const byName = (name: string): Backend => lb.upstream.backends[names.indexOf(name)] as Backend;
  return { lb, byName };
}

/** Which backends answer `count` requests, and the statuses seen. */
async function spread(lb: Lb, count: number): Promise<{ names: string[]; statuses: number[] }> {
  const names = new Set<string>();
  const statuses = new Set<number>();
  for (let i = 0; i < count; i++) {
    const res = await request(`${lb.url}/`);
    const text = await res.body.text();
    statuses.add(res.statusCode);
    if (res.statusCode === 200) names.add(text);
  }
  return { names: [...names].sort(), statuses: [...statuses] };
}

describe('panic threshold', () => {
  for (const balancer of ['round-robin', 'least-conn'] as const) {
    test(`${balancer}: below the threshold requests go to unhealthy backends too, and stop once above`, async (t) => {
      const { lb, byName } = await fourBackends(t, { panicThreshold: 50, balancer });
      byName('b').markDown(DownReason.healthCheck);
      byName('c').markDown(DownReason.failedAttempts);
      assert.equal(lb.upstream.panic, false, '2 of 4 healthy is not below 50%');
      assert.deepEqual((await spread(lb, 8)).names, ['a', 'd']);

      byName('d').markDown(DownReason.ejected);
      assert.equal(lb.upstream.panic, true, '1 of 4 healthy');
      assert.ok(messages(lb.logs).includes('upstream web entering panic mode (1 of 4 backends healthy, threshold 50%): balancing over all backends'));
      assert.deepEqual((await spread(lb, 12)).names, ['a', 'b', 'c', 'd']);

      byName('c').markUp(DownReason.failedAttempts);
      assert.equal(lb.upstream.panic, false);
      assert.ok(messages(lb.logs).includes('upstream web leaving panic mode (2 of 4 backends healthy, threshold 50%)'));
      assert.deepEqual((await spread(lb, 8)).names, ['a', 'c']);
    });
  }

  test('draining and disabled backends stay out, and do not count', async (t) => {
    const { lb, byName } = await fourBackends(t, { panicThreshold: 50 });
    byName('d').markDown(DownReason.disabled);
    byName('b').markDown(DownReason.healthCheck);
    byName('c').markDown(DownReason.healthCheck);
    assert.equal(lb.upstream.panic, true, '1 of 3 eligible healthy');
    assert.deepEqual((await spread(lb, 9)).names, ['a', 'b', 'c']);
    byName('a').markDown(DownReason.draining);
    byName('b').markDown(DownReason.draining);
    byName('c').markDown(DownReason.draining);
    assert.deepEqual((await spread(lb, 3)).statuses, [503], 'nothing eligible: 503');
  });

  test('off by default: with every backend down the answer is 503', async (t) => {
    const { lb, byName } = await fourBackends(t, {});
    for (const name of ['b', 'c', 'd']) byName(name).markDown(DownReason.healthCheck);
    assert.deepEqual((await spread(lb, 4)).names, ['a']);
    byName('a').markDown(DownReason.ejected);
    assert.equal(lb.upstream.panic, false);
    assert.deepEqual((await spread(lb, 3)).statuses, [503]);
  });
});
