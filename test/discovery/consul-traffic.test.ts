import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { ConsulStandIn } from '../helpers/consul-api.js';
import { startAddressBackends } from '../helpers/dnsmasq.js';
import { startLoad } from '../helpers/load.js';
import { until } from '../helpers/servers.js';
import { get, scrape, startWhileSourceDown, untilAsync } from './traffic-helpers.js';

test('consul discovery with traffic flowing: ready at the first set, scale up and down, failing checks, deregistration drains, Consul away, a burst, zero', { timeout: 90_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const { port, hosts, hits } = await startAddressBackends(6, cleanup);
  const [h2, h3, h4, h5, h6, h7] = hosts as [string, string, string, string, string, string];
  const consul = await ConsulStandIn.start();
  cleanup(() => consul.close());
  const register = (host: string): void => consul.register('web', { id: host, address: host, port });
  register(h2);
  // Consul is away at start: the proxy starts, but is not ready until the first set.
  await consul.down();
  const config: ConfigInput = {
    listeners: [{ host: '127.0.0.1', port: 0 }],
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { web: { discover: { consul: { service: 'web', address: consul.url } }, healthCheck: { type: 'tcp', interval: '1s' } } },
  };
  const { lb, admin, status } = await startWhileSourceDown(config, () => consul.up(), cleanup);
  const backendOf = (host: string) => lb.upstream.backends.find((b) => b.url === `http://${host}:${port}`);
  const hitsOf = (host: string): number => hits.get(host) ?? 0;

  const load = startLoad({ url: lb.url, concurrency: 4 });
  cleanup(() => load.stop());
  // Scale up.
  register(h3);
  register(h4);
  await until(() => hitsOf(h3) > 10 && hitsOf(h4) > 10, 10_000, 'new instances serving');

  // A failing check (not passing): out of the set, drained, nothing new.
  const failing = backendOf(h3);
  consul.setStatus('web', h3, 'critical');
  await until(() => backendOf(h3) === undefined && failing?.inFlight === 0, 10_000, 'the critical instance drained');
  // Deregistered (an instance shutting down): drains, nothing new.
  const leaving = backendOf(h4);
  consul.deregister('web', h4);
  await until(() => backendOf(h4) === undefined && leaving?.inFlight === 0, 10_000, 'the deregistered instance drained');
  const [h3Hits, h4Hits] = [hitsOf(h3), hitsOf(h4)];
  const served = load.requests;
  await until(() => load.requests > served + 100, 10_000, 'more traffic');
  assert.equal(hitsOf(h3), h3Hits, 'a critical instance takes nothing new');
  assert.equal(hitsOf(h4), h4Hits, 'a deregistered instance takes nothing new');

  // Consul away: the last set serves, the error shows, then it recovers.
  await consul.down();
  await untilAsync(async () => (await status()).state === 'error', 10_000, 'the error in /api/status');
  const away = await status();
  assert.equal(away.backends, 1);
  assert.ok(away.lastError !== null);
  const metrics = await scrape(admin);
  assert.equal(metrics.get('switchyard_discovery_failing{source="consul",upstream="web"}'), 1);
  assert.ok((metrics.get('switchyard_discovery_errors_total{source="consul",upstream="web"}') ?? 0) >= 1);
  const during = load.requests;
  await until(() => load.requests > during + 100, 10_000, 'traffic while Consul is away');
  register(h5); // registered while away: seen once it answers again
  await consul.up();
  await untilAsync(async () => (await status()).state === 'ok' && backendOf(h5) !== undefined, 15_000, 'recovery and the change made meanwhile');
  await until(() => hitsOf(h5) > 10, 10_000, 'the instance registered while away serving');

  // A burst of 100 changes in about a second, applied as few updates, ending on the right set.
  const generation = (await status()).generation;
  const started = performance.now();
  for (let i = 0; i < 100; i++) {
    if (i === 99) register(h7);
    else if (i % 2 === 0) register(h6);
    else consul.deregister('web', h6);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const burstMs = performance.now() - started;
  const finalSet = [h2, h5, h6, h7].map((h) => `http://${h}:${port}`);
  await until(() => JSON.stringify(lb.upstream.backends.map((b) => b.url).sort()) === JSON.stringify(finalSet), 10_000, 'the final set');
  await until(() => lb.upstream.backends.every((b) => b.downReasons === 0), 10_000, 'the final set serving');
  const applied = (await status()).generation - generation;
  t.diagnostic(`100 registrations in ${Math.round(burstMs)} ms applied as ${applied} update(s)`);
  assert.ok(applied >= 1 && applied <= Math.ceil(burstMs / 1000) + 2, `${applied} updates for a burst of ${Math.round(burstMs)} ms`);
  await until(() => hitsOf(h7) > 10, 10_000, 'the last instance of the burst serving');

  const report = await load.stop();
  assert.equal(report.failures, 0, JSON.stringify(report.statuses) + JSON.stringify(report.errors));

  // Scaled to zero: every instance deregistered, the upstream empties, 503.
  for (const host of [h2, h5, h6, h7]) consul.deregister('web', host);
  await until(() => lb.upstream.backends.length === 0, 10_000, 'emptied');
  assert.equal((await get(lb.url))[0], 503);
  assert.equal((await get(`${admin}/ready`))[0], 200, 'an empty set is an answer: still ready');
});
