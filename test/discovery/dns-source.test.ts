import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsDiscoverySchema } from '../../src/config/discovery-schema.js';
import { DnsSource } from '../../src/discovery/dns.js';
import type { DiscoveredBackend, DiscoverySink } from '../../src/discovery/source.js';
import { createLogger } from '../../src/log.js';
import { cleanupFor } from '../helpers/cleanup.js';
import { startDnsmasq } from '../helpers/dnsmasq.js';

const logger = createLogger({ level: 'silent' });

/** A sink that keeps every report, and waits for the next one that passes a test. */
function recordingSink() {
  const reports: Report[] = [];
  let wake: (() => void) | null = null;
  const sink: DiscoverySink = {
    update(set) {
      reports.push({ set });
      wake?.();
    },
    error(error) {
      reports.push({ error });
      wake?.();
    },
  };
  const next = async <T>(pick: (r: Report) => T | undefined, timeoutMs = 5000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let seen = reports.length;
    for (;;) {
      for (; seen < reports.length; seen++) {
        const found = pick(reports[seen] as Report);
        if (found !== undefined) return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching report in ${timeoutMs} ms: ${JSON.stringify(reports.slice(-3), (k, v: unknown) => (v instanceof Error ? v.message : v))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = null;
    }
  };
  return { sink, reports, next };
}

const urls = (set: readonly DiscoveredBackend[]): string[] => set.map((b) => b.url).sort();
type Report = { set: readonly DiscoveredBackend[] } | { error: Error };
const setOf = (r: Report): readonly DiscoveredBackend[] | undefined => ('set' in r ? r.set : undefined);
const errorOf = (r: Report): Error | undefined => ('error' in r ? r.error : undefined);

function source(options: Record<string, unknown>, cleanup: (fn: () => unknown) => void): DnsSource {
  const dns = new DnsSource(dnsDiscoverySchema.parse({ minInterval: '20ms', maxInterval: '1s', ...options }), { logger });
  cleanup(() => dns.stop());
  return dns;
}

test('dns A: one backend per address on the port, following the records as they change', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2', '127.0.0.3'] });
  const dns = source({ name: 'web.test', port: 8080, servers: [dnsmasq.server] }, cleanup);
  assert.equal(dns.description, 'dns://web.test:8080');
  const { sink, next } = recordingSink();
  dns.start(sink);
  assert.deepEqual(urls(await next(setOf)), ['http://127.0.0.2:8080', 'http://127.0.0.3:8080']);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2', '127.0.0.3', '127.0.0.4'] });
  const grown = await next((r) => (setOf(r)?.length === 3 ? setOf(r) : undefined));
  assert.deepEqual(grown.map((b) => [b.weight, b.terminating]), [[1, false], [1, false], [1, false]]);
});

test('dns AAAA: IPv6 addresses in brackets', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'six.test': ['::1', 'fd00::7'] });
  const dns = source({ name: 'six.test', type: 'AAAA', port: 81, servers: [dnsmasq.server] }, cleanup);
  const { sink, next } = recordingSink();
  dns.start(sink);
  assert.deepEqual(urls(await next(setOf)), ['http://[::1]:81', 'http://[fd00::7]:81']);
});

test('dns SRV: per target and port, SRV weights as weights (0 as 1), only the lowest priority', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'a.test': ['127.0.0.2'], 'b.test': ['127.0.0.3', '127.0.0.4'], 'c.test': ['127.0.0.5'] });
  await dnsmasq.setSrv(['_http._tcp.web.test,a.test,8001,10,5', '_http._tcp.web.test,b.test,8002,10,0', '_http._tcp.web.test,c.test,8003,20,9']);
  const dns = source({ name: '_http._tcp.web.test', type: 'SRV', servers: [dnsmasq.server] }, cleanup);
  assert.equal(dns.description, 'dns+srv://_http._tcp.web.test');
  const { sink, next } = recordingSink();
  dns.start(sink);
  const set = await next(setOf);
  assert.deepEqual(
    [...set].sort((a, b) => (a.url < b.url ? -1 : 1)).map((b) => [b.url, b.weight]),
    [['http://127.0.0.2:8001', 5], ['http://127.0.0.3:8002', 1], ['http://127.0.0.4:8002', 1]],
  );
  // The priority-10 records gone, the priority-20 one serves.
  await dnsmasq.setSrv(['_http._tcp.web.test,c.test,8003,20,9']);
  const fallback = await next((r) => (setOf(r)?.length === 1 ? setOf(r) : undefined));
  assert.deepEqual(fallback.map((b) => [b.url, b.weight]), [['http://127.0.0.5:8003', 9]]);
});

test('dns: NODATA is an explicit empty set; NXDOMAIN and a silent server are errors that keep the last set', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2'] });
  const dns = source({ name: 'web.test', port: 80, servers: [dnsmasq.server] }, cleanup);
  const { sink, next } = recordingSink();
  dns.start(sink);
  assert.deepEqual(urls(await next(setOf)), ['http://127.0.0.2:80']);
  // The name stays (an AAAA record) with no A record: NOERROR, empty answer.
  await dnsmasq.setHosts({ 'web.test': ['::1'] });
  await next((r) => (setOf(r)?.length === 0 ? true : undefined));
  await dnsmasq.setHosts({});
  assert.match((await next(errorOf)).message, /^A web\.test: no such name \(NXDOMAIN\)$/);
  await dnsmasq.stop();
  const silent = await next((r) => (errorOf(r)?.message.includes('NXDOMAIN') === false ? errorOf(r) : undefined));
  assert.match(silent.message, /^A web\.test: (no answer from the DNS servers \(timeout\)|DNS server refused the connection)$/);
  await dnsmasq.start();
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.9'] });
  assert.deepEqual(urls(await next((r) => (setOf(r)?.length === 1 ? setOf(r) : undefined), 10_000)), ['http://127.0.0.9:80']);
});

test('dns: stop() cancels the query in flight and the next round', async (t) => {
  const cleanup = cleanupFor(t);
  const dnsmasq = await startDnsmasq(cleanup);
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.2'] });
  const dns = source({ name: 'web.test', port: 80, servers: [dnsmasq.server] }, cleanup);
  const { sink, next, reports } = recordingSink();
  dns.start(sink);
  await next(setOf);
  await dns.stop();
  const count = reports.length;
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.3'] });
  await dnsmasq.setHosts({ 'web.test': ['127.0.0.4'] });
  assert.equal(reports.length, count);
});
