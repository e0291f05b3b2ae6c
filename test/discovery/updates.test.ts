import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { parseConfigInput } from '../../src/config/load.js';
import type { ConfigInput } from '../../src/config/schema.js';
import type { DiscoverySource } from '../../src/discovery/source.js';
import { UpstreamDiscovery } from '../../src/discovery/upstream-state.js';
import { createLogger } from '../../src/log.js';
import { Runtime } from '../../src/runtime.js';
import { DownReason, type Backend } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { ManualClock } from '../helpers/health.js';
import { deadPort, startBackend, until } from '../helpers/servers.js';

const logger = createLogger({ level: 'silent' });

/**
 * A runtime whose one upstream discovers by DNS from a server that never answers (a closed
 * port: every refresh fails, so the set stays what the test feeds the sink by hand, as a
 * Kubernetes or Consul source would).
 */
async function discoveringRuntime(cleanup: (fn: () => unknown) => void, extra: Partial<ConfigInput['upstreams'][string]> = {}) {
  const closed = await deadPort();
  const input: ConfigInput = {
    listeners: [{ host: '127.0.0.1', port: 0 }],
    admin: false,
    upstreams: { web: { discover: { dns: { name: 'web.test', port: 80, servers: [`127.0.0.1:${closed}`], minInterval: '1h', maxInterval: '1h' } }, healthCheck: { type: 'tcp', interval: '1h' }, ...extra } },
  };
  const runtime = new Runtime(parseConfigInput(input), logger);
  cleanup(() => runtime.close(0));
  await runtime.start();
  const sink = [...runtime.discoveries.all()][0] as UpstreamDiscovery;
  const backends = (): readonly Backend[] => runtime.snapshot.upstreams.get('web')?.backends ?? [];
  const find = (url: string): Backend | undefined => backends().find((b) => b.url === url);
  const get = async (): Promise<number> => {
    const res = await request(runtime.urls[0] as string);
    await res.body.text();
    return res.statusCode;
  };
  return { runtime, input, sink, backends, find, get };
}

const entry = (url: string, terminating = false, weight = 1) => ({ url, weight, terminating });

test('an update keeps the backends that stay (live state and all), checks new ones first, drains the removed', async (t) => {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  // c's first health check waits until the test lets it pass.
  let passHealth = (): void => undefined;
  const healthGate = new Promise<void>((resolve) => (passHealth = resolve));
  const c = await startBackend('c', (req, res) => {
    const answer = (): void => void res.writeHead(200, { 'x-backend': 'c' }).end('c');
    if (req.url === '/health') void healthGate.then(answer);
    else answer();
  });
  cleanup(() => a.close());
  cleanup(() => c.close());
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const { sink, backends, find, get } = await discoveringRuntime(cleanup, { healthCheck: { type: 'http', path: '/health', rise: 1, fall: 1, interval: '1h', timeout: '10s' } });
  assert.equal(backends().length, 0);
  assert.equal(await get(), 503, 'no backend discovered yet');

  sink.update([entry(a.url)]);
  await until(() => find(a.url)?.available === true, 5000, 'a discovered and checked');
  assert.equal(await get(), 200);
  const kept = find(a.url) as Backend;
  kept.markDown(DownReason.disabled);

  // New backends start down until a health check passes: c waits for its check, the dead one never passes.
  const checksOfA = (): number => a.seen.filter((r) => r.url === '/health').length;
  const aChecked = checksOfA();
  sink.update([entry(a.url), entry(dead), entry(c.url, false, 3)]);
  await until(() => find(c.url) !== undefined, 5000, 'c discovered');
  assert.equal((find(c.url) as Backend).downReasons, DownReason.healthCheck);
  assert.equal(await get(), 503, 'a disabled, c not checked yet, dead never passes');
  passHealth();
  await until(() => find(c.url)?.available === true, 5000, 'c checked');
  assert.equal(checksOfA(), aChecked, 'a kept backend goes on at its own interval, not checked again by the update');
  assert.equal(find(a.url), kept, 'the same Backend object');
  assert.equal(kept.downReasons, DownReason.disabled, "the operator's disable survives");
  assert.equal(find(c.url)?.weight, 3);
  assert.notEqual((find(dead) as Backend).downReasons & DownReason.healthCheck, 0);
  for (let i = 0; i < 10; i++) assert.equal(await get(), 200);
  assert.equal(c.seen.filter((r) => r.url === '/').length, 10, 'only c serves');

  // Terminating: still listed, takes nothing new; removed: draining, pool closed.
  const deadBackend = find(dead) as Backend;
  sink.update([entry(a.url), entry(c.url, true, 3)]);
  await until(() => find(dead) === undefined, 5000, 'dead removed');
  assert.notEqual(deadBackend.downReasons & DownReason.draining, 0);
  assert.notEqual((find(c.url) as Backend).downReasons & DownReason.terminating, 0);
  assert.equal(await get(), 503, 'a disabled, c terminating');
  kept.markUp(DownReason.disabled);
  assert.equal(await get(), 200);

  // An explicit empty set empties the upstream: 503.
  sink.update([]);
  await until(() => backends().length === 0, 5000, 'empty set applied');
  assert.equal(await get(), 503);
});

test('a config reload keeps the discovered set when the discover spec is unchanged, and swaps the source when it changes', async (t) => {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  cleanup(() => a.close());
  const { runtime, input, sink, find } = await discoveringRuntime(cleanup);
  sink.update([entry(a.url)]);
  await until(() => find(a.url)?.available === true, 5000, 'a discovered');
  const before = find(a.url);
  const generation = sink.generation;
  const result = await runtime.apply(parseConfigInput({ ...input, upstreams: { web: { ...input.upstreams['web'], balancer: 'least-conn' } } }), 'test');
  assert.equal(result.ok, true);
  assert.equal(find(a.url), before);
  assert.equal([...runtime.discoveries.all()][0], sink, 'same source');
  assert.equal(sink.generation, generation);

  // Another name: a new source, serving the old set until it answers.
  const changed = structuredClone(input) as { upstreams: { web: { discover: { dns: { name: string } } } } };
  changed.upstreams.web.discover.dns.name = 'other.test';
  assert.equal((await runtime.apply(parseConfigInput(changed), 'test')).ok, true);
  assert.notEqual([...runtime.discoveries.all()][0], sink);
  assert.equal(find(a.url), before);

  // A fixed list again: the source stops.
  assert.equal((await runtime.apply(parseConfigInput({ ...input, upstreams: { web: { backends: [a.url] } } }), 'test')).ok, true);
  assert.deepEqual([...runtime.discoveries.all()], []);
  assert.equal(find(a.url), before);
});

test('a burst of updates is applied once, after the debounce; an unchanged answer applies nothing', () => {
  const clock = new ManualClock();
  const source: DiscoverySource = { kind: 'dns', description: 'dns://x:1', start: () => undefined, stop: async () => undefined };
  let due = 0;
  const state = new UpstreamDiscovery({ upstream: 'web', source, specKey: '{}', onDue: () => due++, logger, clock });
  for (let i = 1; i <= 100; i++) state.update(Array.from({ length: i % 7 }, (_, k) => entry(`http://10.0.0.${k + 1}:8080`)));
  assert.equal(clock.pending().length, 1, 'one debounce timer for the burst');
  clock.fire(clock.pending()[0] as never);
  assert.equal(due, 1);
  const set = state.take();
  assert.deepEqual(set?.map((b) => b.url), ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'], '100 % 7 = 2: the last answer');
  state.applied(set ?? []);
  assert.equal(state.generation, 1);
  // The same set in another order, a URL spelt with a trailing slash: nothing to do.
  state.update([entry('http://10.0.0.2:8080/'), entry('http://10.0.0.1:8080')]);
  assert.equal(clock.pending().length, 0);
  // A change and its undoing within one window: the timer fires, nothing is applied.
  state.update([entry('http://10.0.0.3:8080')]);
  state.update([entry('http://10.0.0.1:8080'), entry('http://10.0.0.2:8080')]);
  clock.fire(clock.pending()[0] as never);
  assert.equal(state.take(), null);
  assert.equal(state.generation, 1);
  state.error(new Error('timeout'));
  assert.equal(state.view().state, 'error');
  assert.deepEqual(state.current.map((b) => b.url), ['http://10.0.0.1:8080', 'http://10.0.0.2:8080'], 'the last good set stays');
});

test('every balancer, sticky sessions and the queue take an upstream emptied by discovery: 503, then the next set serves', async (t) => {
  const cleanup = cleanupFor(t);
  const a = await startBackend('a');
  cleanup(() => a.close());
  for (const balancer of ['round-robin', 'weighted-round-robin', 'least-conn', 'p2c', 'ewma', 'random', 'ip-hash', 'ring-hash', 'maglev'] as const) {
    const { sink, find, get } = await discoveringRuntime(cleanup, { balancer, sticky: true, maxInFlight: 5, queue: { size: 10, timeout: '50ms' } });
    assert.equal(await get(), 503, balancer);
    sink.update([entry(a.url)]);
    await until(() => find(a.url)?.available === true, 5000, `${balancer}: a discovered`);
    assert.equal(await get(), 200, balancer);
    sink.update([]);
    await until(() => find(a.url) === undefined, 5000, `${balancer}: emptied`);
    assert.equal(await get(), 503, balancer);
  }
});
