import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import type { ConfigInput } from '../../src/config/schema.js';
import { parseDiscoverUri } from '../../src/discovery/uri.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { localConfig, startConfigured } from '../helpers/config.js';
import { ConsulStandIn } from '../helpers/consul-api.js';
import { startDnsmasq } from '../helpers/dnsmasq.js';
import { makeCa, startTlsBackend } from '../helpers/tls.js';

/** A GET through the proxy: status and body. */
async function get(url: string): Promise<[number, string]> {
  const res = await request(url);
  return [res.statusCode, await res.body.text()];
}

test('discover.scheme https: DNS and Consul backends served over TLS, verified with the upstream tls.ca', async (t) => {
  const cleanup = cleanupFor(t);
  const ca = await makeCa();
  cleanup(() => ca.remove());
  const backend = await startTlsBackend('secure', await ca.issue('localhost', ['DNS:localhost', 'IP:127.0.0.1']));
  cleanup(() => backend.close());
  const consul = await ConsulStandIn.start();
  cleanup(() => consul.close());
  consul.register('web', { id: 'secure', address: '127.0.0.1', port: backend.port });
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'secure.test': ['127.0.0.1'] });

  const upstreams: ConfigInput['upstreams'] = {
    byConsul: { discover: { consul: { service: 'web', address: consul.url, scheme: 'https' } }, tls: { ca: ca.caFile } },
    byDns: { discover: { dns: { name: 'secure.test', port: backend.port, servers: [dnsmasq.server], scheme: 'https' } }, tls: { ca: ca.caFile } },
    plain: { discover: { consul: { service: 'web', address: consul.url } } },
  };
  const routes = [
    { pathPrefix: '/consul', upstream: 'byConsul' },
    { pathPrefix: '/dns', upstream: 'byDns' },
    { pathPrefix: '/', upstream: 'plain' },
  ];
  const lb = await startConfigured({ config: localConfig(upstreams, { routes }) });
  cleanup(() => lb.close());
  assert.deepEqual(lb.upstreams.get('byConsul')?.backends.map((b) => b.url), [`https://127.0.0.1:${backend.port}`]);
  assert.deepEqual(lb.upstreams.get('byDns')?.backends.map((b) => b.url), [`https://127.0.0.1:${backend.port}`]);
  assert.deepEqual(lb.upstreams.get('plain')?.backends.map((b) => b.url), [`http://127.0.0.1:${backend.port}`], 'http stays the default');
  assert.deepEqual(await get(`${lb.url}/consul`), [200, 'secure']);
  assert.deepEqual(await get(`${lb.url}/dns`), [200, 'secure']);
  assert.ok(backend.servingHandshakes().length >= 2, 'the requests came over TLS');
  // Plain HTTP to a TLS port: the backend closes the connection, the proxy answers 502.
  const [status] = await get(`${lb.url}/plain`);
  assert.equal(status, 502);
});

test('--discover takes ?scheme= on the DNS and Consul forms', () => {
  assert.deepEqual(parseDiscoverUri('dns://web.internal:8443?scheme=https'), { dns: { name: 'web.internal', type: 'A', port: 8443, scheme: 'https' } });
  assert.deepEqual(parseDiscoverUri('dns+srv://_https._tcp.web.internal?scheme=https'), { dns: { name: '_https._tcp.web.internal', type: 'SRV', scheme: 'https' } });
  assert.deepEqual(parseDiscoverUri('consul://web?scheme=https'), { consul: { service: 'web', scheme: 'https' } });
  assert.throws(() => parseDiscoverUri('k8s://web?scheme=https'), /unknown parameter "scheme"/);
});
