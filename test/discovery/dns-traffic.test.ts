import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startConfigured } from '../helpers/config.js';
import { startAddressBackends, startDnsmasq } from '../helpers/dnsmasq.js';
import { startLoad } from '../helpers/load.js';
import { byKey, parseExposition } from '../helpers/prometheus.js';
import { until } from '../helpers/servers.js';

async function json(url: string): Promise<Record<string, unknown>> {
  const res = await request(url);
  return (await res.body.json()) as Record<string, unknown>;
}

interface DiscoveryStatus {
  state: string;
  generation: number;
  source: string;
  lastError: { message: string } | null;
  backends: number;
}

test('dns discovery with traffic flowing: scale up, scale down, the DNS server away, an empty answer', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  const { port, hits } = await startAddressBackends(3, cleanup);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2'] });
  const config: ConfigInput = {
    listeners: [{ host: '127.0.0.1', port: 0 }],
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { web: { discover: { dns: { name: 'web.test', port, servers: [dnsmasq.server], minInterval: '20ms', maxInterval: '1s' } }, healthCheck: { type: 'tcp', interval: '1s' } } },
  };
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const status = async (): Promise<DiscoveryStatus> => ((await json(`${lb.adminUrl}/api/status`))['discovery'] as Record<string, DiscoveryStatus>)['web'] as DiscoveryStatus;
  assert.deepEqual(lb.upstream.backends.map((b) => b.url), [`http://127.0.0.2:${port}`], 'the first answer is in force when start() resolves');
  assert.equal((await status()).source, `dns://web.test:${port}`);

  const load = startLoad({ url: lb.url, concurrency: 4 });
  cleanup(() => load.stop());
  // Scale up: the new addresses take traffic.
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2', '127.0.0.3', '127.0.0.4'] });
  const before = new Map(hits);
  await until(() => ['127.0.0.3', '127.0.0.4'].every((h) => (hits.get(h) ?? 0) > (before.get(h) ?? 0) + 10), 10_000, 'new backends serving');
  const kept = lb.upstream.backends.find((b) => b.url.includes('127.0.0.2'));

  // Scale down: the removed ones drain, no request fails.
  const leaving = lb.upstream.backends.find((b) => b.url.includes('127.0.0.3'));
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2', '127.0.0.4'] });
  await until(() => lb.upstream.backends.length === 2, 10_000, 'scaled down');
  await until(() => leaving?.inFlight === 0, 10_000, 'requests in flight to the removed backend done');
  assert.equal(lb.upstream.backends.find((b) => b.url.includes('127.0.0.2')), kept, 'the kept backend is the same object');
  const gone = hits.get('127.0.0.3');
  await until(() => (hits.get('127.0.0.4') ?? 0) > (before.get('127.0.0.4') ?? 0) + 50, 10_000, 'more traffic');
  assert.equal(hits.get('127.0.0.3'), gone, 'the removed backend takes nothing new');

  // The DNS server goes away: the last good set serves, and the admin API and metrics say so.
  await dnsmasq.stop();
  await until(() => lb.logs.some((l) => String(l['msg']).includes('failed, keeping the last good set of 2')), 10_000, 'failure logged');
  const failing = await status();
  assert.equal(failing.state, 'error');
  assert.equal(failing.backends, 2);
  assert.match(failing.lastError?.message ?? '', /^A web\.test: (no answer from the DNS servers \(timeout\)|DNS server refused the connection)$/);
  const metrics = byKey(parseExposition(await (await request(`${lb.adminUrl}/metrics`)).body.text()));
  assert.ok((metrics.get('switchyard_discovery_errors_total{source="dns",upstream="web"}') ?? 0) >= 1);
  assert.ok((metrics.get('switchyard_discovery_updates_total{source="dns",upstream="web"}') ?? 0) >= 3);
  assert.equal(metrics.get('switchyard_discovery_failing{source="dns",upstream="web"}'), 1);
  const served = load.requests;
  await until(() => load.requests > served + 50, 10_000, 'traffic while DNS is away');
  await dnsmasq.start();
  await until(() => lb.logs.some((l) => String(l['msg']).endsWith('answers again')), 10_000, 'recovery logged');
  assert.equal((await status()).state, 'ok');

  const report = await load.stop();
  assert.equal(report.failures, 0, JSON.stringify(report.statuses) + JSON.stringify(report.errors));

  // The name stays (an AAAA record) but has no A record: an explicit empty set, 503.
  const generation = (await status()).generation;
  await dnsmasq.setHosts({ 'web.test': ['::1'] });
  await until(() => lb.upstream.backends.length === 0, 10_000, 'emptied');
  const res = await request(lb.url);
  await res.body.text();
  assert.equal(res.statusCode, 503);
  assert.equal((await status()).generation, generation + 1);
});

test('dns discovery: a burst of record changes is applied once or twice, ending on the last set', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  const { port, hosts } = await startAddressBackends(6, cleanup);
  await dnsmasq.setHosts({ 'web.test': hosts.slice(0, 1) });
  const config: ConfigInput = {
    listeners: [{ host: '127.0.0.1', port: 0 }],
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { web: { discover: { dns: { name: 'web.test', port, servers: [dnsmasq.server], minInterval: '10ms', maxInterval: '1s' } } } },
  };
  const lb = await startConfigured({ config });
  cleanup(() => lb.close());
  const status = async (): Promise<DiscoveryStatus> => ((await json(`${lb.adminUrl}/api/status`))['discovery'] as Record<string, DiscoveryStatus>)['web'] as DiscoveryStatus;
  const generation = (await status()).generation;
  // Ten changes, each served by dnsmasq before the next, well inside one 100 ms debounce window
  // of each other; the source sees several of them.
  const started = performance.now();
  for (let i = 0; i < 10; i++) await dnsmasq.setHosts({ 'web.test': hosts.slice(0, 1 + (i % 6)) });
  const burstMs = performance.now() - started;
  await until(() => lb.upstream.backends.length === 4, 10_000, 'the last set (10th change: 4 addresses)');
  await new Promise((resolve) => setTimeout(resolve, 300)); // a debounce window and a few refreshes: nothing more comes
  const applied = (await status()).generation - generation;
  t.diagnostic(`10 changes in ${Math.round(burstMs)} ms applied as ${applied} update(s)`);
  assert.ok(applied >= 1 && applied <= Math.ceil(burstMs / 100) + 1, `${applied} updates for a burst of ${Math.round(burstMs)} ms`);
  assert.equal(lb.upstream.backends.length, 4);
});
