import assert from 'node:assert/strict';
import { test } from 'node:test';
import { request } from 'undici';
import { parseConfig, parseConfigInput } from '../../src/config/load.js';
import { parseDiscoverUri } from '../../src/discovery/uri.js';
import { start } from '../../src/index.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { spawnCli } from '../helpers/cli.js';
import { startAddressBackends, startDnsmasq } from '../helpers/dnsmasq.js';

function problems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'lb.yaml');
  } catch (err) {
    return (err as Error).message.split('\n');
  }
  return [];
}

test('discover: every field defaulted, and each mistake one line at its position', () => {
  const config = parseConfigInput({ upstreams: { web: { discover: { dns: { name: '_http._tcp.web.test', type: 'SRV' } } } } });
  assert.deepEqual(config.upstreams['web']?.discover, { dns: { name: '_http._tcp.web.test', type: 'SRV', minInterval: 1000, maxInterval: 30_000, scheme: 'http' } });
  const consul = parseConfigInput({ upstreams: { web: { discover: { consul: { service: 'web' } } } } });
  assert.deepEqual(consul.upstreams['web']?.discover, { consul: { service: 'web', address: 'http://127.0.0.1:8500', passingOnly: true, scheme: 'http' } });
  const k8s = parseConfigInput({ upstreams: { web: { discover: { kubernetes: { service: 'web', port: 'http' } } } } });
  assert.deepEqual(k8s.upstreams['web']?.discover, { kubernetes: { service: 'web', port: 'http' } });

  assert.deepEqual(problems('upstreams:\n  web:\n    balancer: maglev\n'), ['lb.yaml:3:5 upstreams.web: needs backends (a list) or discover (a source)']);
  assert.deepEqual(problems('upstreams:\n  web:\n    backends: [http://a:1]\n    discover:\n      dns: { name: web.test, port: 80 }\n'), ['lb.yaml:5:7 upstreams.web.discover: give backends or discover, not both']);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover:\n      dns:\n        name: web.test\n'), ['lb.yaml:5:9 upstreams.web.discover.dns.port: type A needs a port (SRV records carry their own)']);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover:\n      dns: { name: web.test, port: 80, servers: [dns.example], minInterval: 1m, maxInterval: 10s }\n'), [
    'lb.yaml:4:50 upstreams.web.discover.dns.servers.0: "dns.example" is not an IP address (IP or IP:PORT; IPv6 as [IP]:PORT)',
    'lb.yaml:4:77 upstreams.web.discover.dns.minInterval: must not be more than maxInterval',
  ]);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover:\n      dns: { name: web.test, port: 80 }\n      consul: { service: web }\n'), ['lb.yaml:4:7 upstreams.web.discover: one source only, not dns and consul']);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover: {}\n'), ['lb.yaml:3:15 upstreams.web.discover: needs one source: dns, kubernetes or consul']);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover:\n      consul: { service: web, adress: x }\n'), ['lb.yaml:4:31 upstreams.web.discover.consul.adress: unknown key "adress" (did you mean "address"?)']);
  assert.deepEqual(problems('upstreams:\n  web:\n    discover:\n      kubernetes: { service: Web_1 }\n'), ['lb.yaml:4:30 upstreams.web.discover.kubernetes.service: not a Kubernetes Service name']);
});

test('--discover URIs for the common cases, and one line for a bad one', () => {
  assert.deepEqual(parseDiscoverUri('dns://web.internal:8080'), { dns: { name: 'web.internal', type: 'A', port: 8080 } });
  assert.deepEqual(parseDiscoverUri('dns://web.internal:8080?type=aaaa&server=10.0.0.53:5353&server=10.0.0.54'), { dns: { name: 'web.internal', type: 'AAAA', port: 8080, servers: ['10.0.0.53:5353', '10.0.0.54'] } });
  assert.deepEqual(parseDiscoverUri('dns+srv://_http._tcp.web.example'), { dns: { name: '_http._tcp.web.example', type: 'SRV' } });
  assert.deepEqual(parseDiscoverUri('k8s://shop/web:http'), { kubernetes: { namespace: 'shop', service: 'web', port: 'http' } });
  assert.deepEqual(parseDiscoverUri('k8s://web:8080'), { kubernetes: { service: 'web', port: 8080 } });
  assert.deepEqual(parseDiscoverUri('consul://web?dc=eu1'), { consul: { service: 'web', datacenter: 'eu1' } });
  const forms = '(use dns://NAME:PORT, dns+srv://NAME, k8s://[NAMESPACE/]SERVICE[:PORT] or consul://SERVICE)';
  assert.throws(() => parseDiscoverUri('web.internal'), { message: `--discover: "web.internal" is not a discovery URI ${forms}` });
  assert.throws(() => parseDiscoverUri('dns://web.internal'), { message: `--discover: "dns://web.internal" needs a name and a port ${forms}` });
  assert.throws(() => parseDiscoverUri('dns+srv://_x._tcp.a:80'), /needs a name and nothing else/);
  assert.throws(() => parseDiscoverUri('dns://a:1?ttl=5'), /unknown parameter "ttl" \(known: type, server, scheme\)/);
  assert.throws(() => parseDiscoverUri('etcd://web'), /unknown scheme "etcd"/);
});

test('the CLI: --discover runs with a DNS source; a bad URI is one line and exit 2', async (t) => {
  const cleanup = cleanupFor(t);
  const bad = spawnCli(['--discover', 'dns://web.test'], cleanup);
  const [code] = await bad.exited;
  assert.equal(code, 2);
  assert.equal(bad.stderr().trim().split('\n').length, 1, bad.stderr());
  assert.match(bad.stderr(), /--discover: "dns:\/\/web\.test" needs a name and a port/);

  const dnsmasq = await startDnsmasq(cleanup);
  const { port } = await startAddressBackends(2, cleanup);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2', '127.0.0.3'] });
  const cli = spawnCli(['--port', '0', '--host', '127.0.0.1', '--discover', `dns://web.test:${port}?server=${dnsmasq.server}`], cleanup);
  const lbPort = await cli.started();
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const res = await request(`http://127.0.0.1:${lbPort}/`);
    seen.add(await res.body.text());
  }
  assert.deepEqual([...seen].sort(), ['127.0.0.2', '127.0.0.3']);
});

test('start() takes discover too: a kubernetes source checks its apiServer; not both lists', async () => {
  await assert.rejects(start({ port: 0, host: '127.0.0.1', admin: false, log: { level: 'silent' }, discover: { kubernetes: { service: 'web', apiServer: 'ftp://127.0.0.1:1' } } }), /apiServer/);
  await assert.rejects(start({ port: 0, host: '127.0.0.1', admin: false, log: { level: 'silent' }, backends: ['http://127.0.0.1:1'], discover: { consul: { service: 'web' } } }), { message: 'give backends or discover, not both' });
});
