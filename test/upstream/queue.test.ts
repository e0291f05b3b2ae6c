import assert from 'node:assert/strict';
import type http from 'node:http';
import { describe, test, type TestContext } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { ManualClock, type ManualTimer } from '../helpers/health.js';
import { startBackend, until } from '../helpers/servers.js';

type Upstream = ConfigInput['upstreams'][string];

async function get(url: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
  const res = await request(url, signal === undefined ? {} : { signal });
  return { status: res.statusCode, text: await res.body.text() };
}

/**
 * One backend that holds `/hold` requests until released and answers others at once, behind an
 * upstream with maxInFlight 1 and the given queue.
 */
async function oneSlot(t: TestContext, upstream: Partial<Upstream>) {
  const cleanup = cleanupFor(t);
  const held: http.ServerResponse[] = [];
  const backend = await startBackend('b', (req, res) => {
    req.resume();
    if (req.url === '/hold') held.push(res);
    else res.end(`served ${req.url}`);
  });
  cleanup(() => backend.close());
  const clock = new ManualClock();
  const lb = await startConfigured({ config: localConfig({ web: { backends: [backend.url], maxInFlight: 1, ...upstream } }) }, { clock });
  cleanup(() => lb.close());
  const upstreamOf = () => lb.upstream;
  const holding = get(`${lb.url}/hold`);
  await until(() => held.length === 1, 5000, 'the backend to hold the first request');
  const release = async (): Promise<void> => {
    (held.shift() as http.ServerResponse).end('released');
    assert.deepEqual(await holding, { status: 200, text: 'released' });
  };
  const queued = (n: number): Promise<void> => until(() => upstreamOf().queue?.length === n, 5000, `${n} queued`);
  const queueTimers = (): ManualTimer[] => clock.pending().filter((timer) => timer.ms === 1000);
  return { lb, clock, release, queued, queueTimers, holding };
}

describe('per-backend in-flight limit with a queue', { timeout: 30_000 }, () => {
  test('without a queue (the default) a request finding every backend full gets 503 at once', async (t) => {
    const { lb, release } = await oneSlot(t, {});
    assert.equal(lb.upstream.queue, null);
    assert.deepEqual(await get(`${lb.url}/x`), { status: 503, text: 'Service not available\n' });
    await release();
  });

  test('a request waits for a slot and is served when one frees; a full queue answers 503 at once', async (t) => {
    const { lb, release, queued, queueTimers } = await oneSlot(t, { queue: { size: 1, timeout: '1s' } });
    const waiting = get(`${lb.url}/second`);
    await queued(1);
    assert.equal(queueTimers().length, 1, 'one timeout timer per queued request');
    assert.deepEqual(await get(`${lb.url}/third`), { status: 503, text: 'Service not available\n' }, 'the queue is full');
    await release();
    assert.deepEqual(await waiting, { status: 200, text: 'served /second' });
    assert.equal(lb.upstream.queue?.length, 0);
    assert.deepEqual(queueTimers(), [], 'its timer was cleared when it got the slot');
  });

  test('a request that waits past the queue timeout gets 503', async (t) => {
    const { lb, release, queued, queueTimers, clock } = await oneSlot(t, { queue: { size: 4, timeout: '1s' } });
    const waiting = get(`${lb.url}/second`);
    await queued(1);
    clock.fire(queueTimers()[0] as ManualTimer);
    assert.deepEqual(await waiting, { status: 503, text: 'Service not available\n' });
    assert.equal(lb.upstream.queue?.length, 0);
    await release();
  });

  test('a client that hangs up while queued frees its place', async (t) => {
    const { lb, release, queued, queueTimers } = await oneSlot(t, { queue: { size: 1, timeout: '1s' } });
    const controller = new AbortController();
    const abandoned = get(`${lb.url}/gone`, controller.signal).catch((err: unknown) => err);
    await queued(1);
    controller.abort();
    assert.ok((await abandoned) instanceof Error);
    await queued(0);
    assert.deepEqual(queueTimers(), [], 'its timer was cleared');
    // The place is free again: the next request queues instead of getting 503.
    const waiting = get(`${lb.url}/next`);
    await queued(1);
    await release();
    assert.deepEqual(await waiting, { status: 200, text: 'served /next' });
  });

  test('a full backend that is also down queues nothing', async (t) => {
    const { lb, release } = await oneSlot(t, { queue: { size: 4, timeout: '1s' } });
    const backend = lb.upstream.backends[0] as Backend;
    backend.markDown(DownReason.disabled);
    assert.deepEqual(await get(`${lb.url}/x`), { status: 503, text: 'Service not available\n' });
    assert.equal(lb.upstream.queue?.length, 0);
    backend.markUp(DownReason.disabled);
    await release();
  });
});
