import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startConfigured } from '../helpers/config.js';
import { startAddressBackends, startDnsmasq } from '../helpers/dnsmasq.js';
import { until } from '../helpers/servers.js';

const keys = Array.from({ length: 1000 }, (_, i) => `user-${i}`);

/** Which backend each key reaches through `url`. */
async function placement(url: string, agent: Agent): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(
      keys.slice(i, i + 50).map(async (key) => {
        const res = await request(url, { headers: { 'x-key': key }, dispatcher: agent });
        out.set(key, await res.body.text());
      }),
    );
  }
  return out;
}

for (const balancer of ['ring-hash', 'maglev'] as const) {
  test(`two replicas fed by the same DNS place 1,000 keys alike with ${balancer}; removing one of 5 moves about 1/5`, async (t) => {
    const cleanup = cleanupFor(t);
    const dnsmasq = await startDnsmasq(cleanup);
    const { port, hosts } = await startAddressBackends(5, cleanup);
    // The two replicas hear the addresses in different orders: placement must not depend on it.
    await dnsmasq.setHosts({ 'web.test': hosts });
    const config: ConfigInput = {
      listeners: [{ host: '127.0.0.1', port: 0 }],
      admin: false,
      upstreams: { web: { balancer, hashKey: 'header:x-key', discover: { dns: { name: 'web.test', port, servers: [dnsmasq.server], minInterval: '20ms', maxInterval: '1s' } } } },
    };
    const one = await startConfigured({ config });
    cleanup(() => one.close());
    await dnsmasq.setHosts({ 'web.test': [...hosts].reverse() });
    const two = await startConfigured({ config });
    cleanup(() => two.close());
    const agent = new Agent({ connections: 50 });
    cleanup(() => agent.close());

    const before = await placement(one.url, agent);
    assert.deepEqual(await placement(two.url, agent), before, 'both replicas agree');
    assert.equal(new Set(before.values()).size, 5, 'every backend gets keys');

    const removed = '127.0.0.4';
    await dnsmasq.setHosts({ 'web.test': hosts.filter((h) => h !== removed) });
    await until(() => one.upstream.backends.length === 4 && two.upstream.backends.length === 4, 10_000, 'both replicas updated');
    const after = await placement(one.url, agent);
    assert.deepEqual(await placement(two.url, agent), after, 'both replicas still agree');

    const onRemoved = keys.filter((k) => before.get(k) === removed);
    const moved = keys.filter((k) => before.get(k) !== after.get(k));
    assert.ok(onRemoved.every((k) => after.get(k) !== removed));
    assert.ok(onRemoved.length >= 100 && onRemoved.length <= 320, `${onRemoved.length} keys on the removed backend, about 1,000/5`);
    // Ring-hash moves exactly the removed backend's keys; Maglev very nearly (the paper's minimal disruption).
    const strayed = moved.length - onRemoved.length;
    t.diagnostic(`${balancer}: ${onRemoved.length} keys on the removed backend, ${moved.length} moved`);
    assert.ok(balancer === 'ring-hash' ? strayed === 0 : strayed <= 30, `${strayed} keys moved that were not on the removed backend`);
  });
}
