import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { DownReason } from '../../src/upstream/backend.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startAddressBackends } from '../helpers/dnsmasq.js';
import { startKubeApi, type EndpointSpec } from '../helpers/kube-api.js';
import { startLoad } from '../helpers/load.js';
import { until } from '../helpers/servers.js';
import { adminState, get, scrape, startWhileSourceDown, untilAsync } from './traffic-helpers.js';

test('kubernetes discovery with traffic flowing: ready at the first set, scale up and down, not-ready, terminating, the API away, 410, a burst, zero', { timeout: 90_000 }, async (t) => {
  const cleanup = cleanupFor(t);
  const { port, hosts, hits } = await startAddressBackends(6, cleanup);
  const [h2, h3, h4, h5, h6, h7] = hosts as [string, string, string, string, string, string];
  const api = await startKubeApi({ bookmarkIntervalMs: 1000 });
  cleanup(() => api.close());
  const endpoints = new Map<string, EndpointSpec>();
  const publish = (): void => api.applySlice({ name: 'web-a', service: 'web', endpoints: [...endpoints.values()], ports: [{ name: 'http', port }] });
  const set = (host: string, conditions: Omit<EndpointSpec, 'addresses'> | null): void => {
    if (conditions === null) endpoints.delete(host);
    else endpoints.set(host, { addresses: [host], ...conditions });
    publish();
  };
  set(h2, { ready: true });
  // The API server is away at start: the proxy starts, but is not ready until the first set.
  await api.down();
  const config: ConfigInput = {
    listeners: [{ host: '127.0.0.1', port: 0 }],
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { web: { discover: { kubernetes: { namespace: 'default', service: 'web', port: 'http', apiServer: api.url } }, healthCheck: { type: 'tcp', interval: '1s' } } },
  };
  const { lb, admin, status } = await startWhileSourceDown(config, () => api.up(), cleanup);
  const backendOf = (host: string) => lb.upstream.backends.find((b) => b.url === `http://${host}:${port}`);
  const hitsOf = (host: string): number => hits.get(host) ?? 0;

  const load = startLoad({ url: lb.url, concurrency: 4 });
  cleanup(() => load.stop());
  // Scale up.
  set(h3, { ready: true });
  set(h4, { ready: true });
  await until(() => hitsOf(h3) > 10 && hitsOf(h4) > 10, 10_000, 'new endpoints serving');

  // Not ready: out of the set, drained, nothing new.
  const leaving = backendOf(h3);
  set(h3, { ready: false });
  await until(() => backendOf(h3) === undefined && leaving?.inFlight === 0, 10_000, 'the not-ready endpoint drained');
  const h3Hits = hitsOf(h3);
  // Terminating: stays listed, drains, takes nothing new.
  set(h4, { ready: false, serving: true, terminating: true });
  await until(() => ((backendOf(h4)?.downReasons ?? 0) & DownReason.terminating) !== 0 && backendOf(h4)?.inFlight === 0, 10_000, 'the terminating endpoint drained');
  const h4Hits = hitsOf(h4);
  const served = load.requests;
  await until(() => load.requests > served + 100, 10_000, 'more traffic');
  assert.equal(hitsOf(h3), h3Hits, 'a not-ready endpoint takes nothing new');
  assert.equal(hitsOf(h4), h4Hits, 'a terminating endpoint takes nothing new');
  assert.equal(await adminState(admin, 'web', `http://${h4}:${port}`), 'draining');

  // 410 in the middle of a watch: the source lists again, and a change made meanwhile arrives.
  const lists = api.requests.filter((r) => !r.watch).length;
  api.compact({ expireWatches: true });
  set(h5, { ready: true });
  await until(() => hitsOf(h5) > 10, 10_000, 'the endpoint added across the 410');
  assert.ok(api.requests.filter((r) => !r.watch).length > lists, 'listed again');
  assert.equal((await status()).state, 'ok', 'a 410 is routine, not an error');

  // The API server away: the last set serves, the error shows, then it recovers.
  await api.down();
  await untilAsync(async () => (await status()).state === 'error', 10_000, 'the error in /api/status');
  const failing = await status();
  assert.equal(failing.backends, 3);
  assert.ok(failing.lastError !== null);
  const metrics = await scrape(admin);
  assert.equal(metrics.get('switchyard_discovery_failing{source="kubernetes",upstream="web"}'), 1);
  assert.ok((metrics.get('switchyard_discovery_errors_total{source="kubernetes",upstream="web"}') ?? 0) >= 1);
  const during = load.requests;
  await until(() => load.requests > during + 100, 10_000, 'traffic while the API server is away');
  endpoints.delete(h4); // removed while away: seen at the next list
  publish();
  await api.up();
  await untilAsync(async () => (await status()).state === 'ok' && backendOf(h4) === undefined, 15_000, 'recovery and the change made meanwhile');

  // A burst of 100 changes in about a second, applied as few updates, ending on the right set.
  const generation = (await status()).generation;
  const started = performance.now();
  for (let i = 0; i < 100; i++) {
    if (i < 99) set(h6, i % 2 === 0 ? { ready: true } : null);
    else set(h7, { ready: true });
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const burstMs = performance.now() - started;
  const finalSet = [h2, h5, h6, h7].map((h) => `http://${h}:${port}`);
  await until(() => JSON.stringify(lb.upstream.backends.map((b) => b.url).sort()) === JSON.stringify(finalSet), 10_000, 'the final set');
  await untilAsync(async () => (await status()).generation > generation && lb.upstream.backends.every((b) => b.downReasons === 0), 10_000, 'the final set serving');
  const applied = (await status()).generation - generation;
  t.diagnostic(`100 slice changes in ${Math.round(burstMs)} ms applied as ${applied} update(s)`);
  assert.ok(applied <= Math.ceil(burstMs / 100) + 2, `${applied} updates for a burst of ${Math.round(burstMs)} ms`);
  await until(() => hitsOf(h7) > 10, 10_000, 'the last endpoint of the burst serving');

  const report = await load.stop();
  assert.equal(report.failures, 0, JSON.stringify(report.statuses) + JSON.stringify(report.errors));

  // Scaled to zero: the slice goes, the upstream empties, 503.
  api.deleteSlice('web-a');
  await until(() => lb.upstream.backends.length === 0, 10_000, 'emptied');
  assert.equal((await get(lb.url))[0], 503);
  assert.equal((await get(`${admin}/ready`))[0], 200, 'an empty set is an answer: still ready');
});
